"""JSON log lines carry the correlation fields in force, and the fields survive a queue hop."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from shared.observability import correlation
from shared.observability.json_logging import JsonFormatter, configure_logging


def render(message: str, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("connector.test", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return dict(json.loads(JsonFormatter().format(record)))


def test_a_line_is_one_json_object_with_the_bound_fields() -> None:
    with correlation.bind(invocation_id="inv-1", store_hash="abc123", order_id=250):
        line = render("synced", duration_ms=12.5)
    assert line["message"] == "synced"
    assert line["level"] == "INFO"
    assert (line["invocation_id"], line["store_hash"], line["order_id"]) == (
        "inv-1",
        "abc123",
        "250",
    )
    assert line["duration_ms"] == 12.5
    assert "order_id" not in render("after the block")


def test_exceptions_are_inside_the_json_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: boom" in line["exception"]


async def test_concurrent_invocations_do_not_see_each_others_fields() -> None:
    seen: dict[str, str] = {}

    async def invocation(name: str) -> None:
        with correlation.bind(invocation_id=name):
            await asyncio.sleep(0.01)
            seen[name] = correlation.current()["invocation_id"]

    await asyncio.gather(*(invocation(f"inv-{i}") for i in range(20)))
    assert seen == {f"inv-{i}": f"inv-{i}" for i in range(20)}


def test_fields_travel_in_application_properties_even_as_bytes() -> None:
    with correlation.bind(
        correlation_id="c-1",
        store_hash="abc123",
        order_id=7,
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        invocation_id="not-propagated",
    ):
        properties = correlation.to_properties()
    assert "invocation_id" not in properties
    as_bytes = {k.encode(): v.encode() for k, v in properties.items()}
    assert correlation.from_properties(as_bytes) == properties


def test_child_traceparent_keeps_the_trace_and_makes_a_new_span() -> None:
    parent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    child = correlation.child_traceparent(parent)
    assert child.split("-")[1] == "a" * 32
    assert child.split("-")[2] != "b" * 16
    fresh = correlation.child_traceparent("garbage")
    assert len(fresh.split("-")[1]) == 32


def test_unknown_fields_are_refused() -> None:
    with (
        pytest.raises(ValueError, match="unknown correlation fields"),
        correlation.bind(colour="red"),
    ):
        pass


def test_configure_logging_writes_json_to_the_stream() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []
    try:
        configure_logging("INFO", stream)
        with correlation.bind(message_id="m-1"):
            logging.getLogger("connector.x").info("hello")
    finally:
        root.handlers, level = saved
        root.setLevel(level)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert (line["message"], line["message_id"]) == ("hello", "m-1")
