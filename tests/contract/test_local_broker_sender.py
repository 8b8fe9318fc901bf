"""The local sender's group commit: concurrent sends share a commit yet succeed or fail alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from local.broker import LocalBroker, QueueSettings
from local.broker.adapters import LocalBrokerSender
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import SendError


@pytest.fixture
def broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = LocalBroker(tmp_path / "broker.sqlite3")
    opened.ensure_queue("sessions", QueueSettings(requires_session=True))
    opened.ensure_queue("plain")
    yield opened
    opened.close()


async def test_a_refused_send_fails_alone_in_a_shared_commit(broker: LocalBroker) -> None:
    sender = LocalBrokerSender(broker)
    good = [
        sender.send("sessions", [OutboundMessage(b"ok", f"good-{i}", session_id="s")])
        for i in range(5)
    ]
    no_session = sender.send(
        "sessions", [OutboundMessage(b"x", "bad-1", session_id="s"), OutboundMessage(b"y", "bad-2")]
    )
    unknown_queue = sender.send("missing", [OutboundMessage(b"z", "bad-3")])
    results = await asyncio.gather(*good, no_session, unknown_queue, return_exceptions=True)
    assert results[:5] == [None] * 5
    assert isinstance(results[5], SendError)
    assert isinstance(results[6], SendError)
    stored = sorted(m.message_id for m in broker.peek("sessions"))
    assert stored == [f"good-{i}" for i in range(5)], (
        "the refused send stored nothing, not even bad-1"
    )
    await sender.close()


async def test_many_concurrent_sends_are_all_durable_once(broker: LocalBroker) -> None:
    sender = LocalBrokerSender(broker)
    await asyncio.gather(
        *(sender.send("plain", [OutboundMessage(str(i).encode(), f"m-{i}")]) for i in range(300))
    )
    await sender.send("plain", [OutboundMessage(b"again", "m-7")])  # a duplicate id: dropped
    assert broker.queue_info("plain").active_count == 300
    await sender.close()


async def test_a_closed_sender_refuses_to_send(broker: LocalBroker) -> None:
    sender = LocalBrokerSender(broker)
    await sender.close()
    with pytest.raises((SendError, RuntimeError)):
        await sender.send("plain", [OutboundMessage(b"late", "late-1")])
    assert broker.queue_info("plain").active_count == 0
