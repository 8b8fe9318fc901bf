"""Dataverse changes into order messages: the service endpoint path and the change poll, with
fakes of the sender, the row reader, change tracking and the checkpoint store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.stack.plan import plan
from shared.config import Settings, load_settings
from shared.dataverse.errors import BadRequestError, NotFoundError
from shared.dataverse.models import Changes, Retrieved, RowKey
from shared.dataverse.remote_context import (
    EntityChange,
    OptionSetValue,
    RemoteContextError,
)
from shared.handlers.dataverse_changes import (
    KEY_COLUMNS,
    DataverseChanges,
    Forwarded,
    Skipped,
    change_version,
    message_id_for,
    row_message,
)
from shared.handlers.dataverse_poll import POLLED, DataversePoll, PollError
from shared.messaging.message import OutboundMessage
from shared.messaging.ports import SendError
from shared.orchestration.flow import Trigger
from shared.orchestration.messages import OrderMessage, derived_id, read_message
from tests.unit.test_remote_context import FO_ID, FULFILLMENT_UPDATE, SO_ID

FO = uuid.UUID(FO_ID)
SO = uuid.UUID(SO_ID)


class RecordingSender:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[str, OutboundMessage]] = []
        self.calls = 0
        self.fail = fail

    async def send(self, queue: str, messages: Sequence[OutboundMessage]) -> None:
        self.calls += 1
        if self.fail:
            raise self.fail
        self.sent.extend((queue, m) for m in messages)

    async def close(self) -> None:
        return None


@dataclass
class FakeRows:
    rows: dict[tuple[str, uuid.UUID], dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, RowKey, tuple[str, ...]]] = field(default_factory=list)

    async def retrieve(self, entity_set: str, key: RowKey, *, select: Sequence[str]) -> Retrieved:
        self.calls.append((entity_set, key, tuple(select)))
        assert isinstance(key, uuid.UUID)
        row = self.rows.get((entity_set, key))
        if row is None:
            raise NotFoundError("not found", method="GET", path=f"{entity_set}({key})", status=404)
        return Retrieved({k: v for k, v in row.items() if k in select}, None)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in {
        "BIGCOMMERCE_STORES": "abc123",
        "BIGCOMMERCE_ABC123_ACCESS_TOKEN": "t1",
        "BIGCOMMERCE_ABC123_WEBHOOK_SECRET": "s1",
        "DATAVERSE_URL": "https://contoso.crm.dynamics.com",
        "SERVICEBUS_TRANSPORT": "local",
        "DATAVERSE_CHANGE_SOURCE": "poll",
    }.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def handler(settings: Settings, sender: RecordingSender, rows: FakeRows | None = None) -> Any:
    ids = iter(f"corr-{n}" for n in range(100))
    return DataverseChanges(settings, sender, rows or FakeRows(), new_id=lambda: next(ids))


def change(
    entity: str = "msdyn_fulfillmentorder",
    record_id: uuid.UUID = FO,
    attributes: Mapping[str, object] | None = None,
    **extra: Any,
) -> EntityChange:
    values: dict[str, Any] = {
        "message_name": "Update",
        "entity": entity,
        "record_id": record_id,
        "attributes": {"bciom_storehash": "abc123", "bciom_bcorderid": 100, "versionnumber": 42}
        if attributes is None
        else attributes,
        "correlation_id": "dv-correlation",
        "operation_created_on": None,
        "depth": 1,
        "initiating_user_id": None,
        "operation_id": "op-1",
    }
    values.update(extra)
    return EntityChange(**values)


def body_of(message: OutboundMessage) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(message.body)
    return body


# -- the service endpoint path ------------------------------------------------------------------


async def test_a_shipped_fulfillment_order_reaches_its_orders_session(settings: Settings) -> None:
    sender = RecordingSender()
    outcome = await handler(settings, sender).receive(
        FULFILLMENT_UPDATE, message_id="sb-1", content_type="application/json"
    )

    assert isinstance(outcome, Forwarded)
    [(queue, message)] = sender.sent
    assert queue == "order-events"
    assert message.session_id == "abc123:order:100"
    assert message.message_id == derived_id("dataverse", "msdyn_fulfillmentorder", FO, "918273")
    assert message.correlation_id == "b374239d-4233-41a9-8b17-a86cb4f737b5"
    body = body_of(message)
    assert body["schema"] == "connector.order"
    assert body["trigger"] == "dataverse_fulfillment"
    assert (body["store_hash"], body["order_id"]) == ("abc123", 100)
    assert body["detail"].startswith("Update msdyn_fulfillmentorder: bciom_shipped")
    # The lifecycle reads it like any order message.
    read = read_message(
        message.body,
        message_id=message.message_id,
        application_properties=message.application_properties,
    )
    assert isinstance(read, OrderMessage)
    assert read.trigger is Trigger.DATAVERSE_FULFILLMENT
    assert read.session_id == "abc123:order:100"


async def test_a_salesorder_change_is_a_dataverse_order_trigger(settings: Settings) -> None:
    sender = RecordingSender()
    outcome = await handler(settings, sender).forward(
        change(
            "salesorder",
            SO,
            {
                "bciom_storehash": "ABC123",
                "bciom_bcorderid": 7,
                "statecode": OptionSetValue(2),
                "versionnumber": 5,
            },
        )
    )
    assert isinstance(outcome, Forwarded)
    assert outcome.trigger is Trigger.DATAVERSE_ORDER
    assert outcome.session_id == "abc123:order:7"
    assert body_of(sender.sent[0][1])["trigger"] == "dataverse_order"


async def test_the_same_change_posted_twice_has_one_message_id(settings: Settings) -> None:
    sender = RecordingSender()
    h = handler(settings, sender)
    await h.receive(FULFILLMENT_UPDATE)
    await h.receive(FULFILLMENT_UPDATE)
    first, second = (m.message_id for _, m in sender.sent)
    assert first == second  # the broker's duplicate detection drops the second
    newer = await h.forward(
        change(
            attributes={
                "bciom_storehash": "abc123",
                "bciom_bcorderid": 100,
                "bciom_shipped": True,
                "versionnumber": 918274,
            }
        )
    )
    assert isinstance(newer, Forwarded)
    assert newer.message_id != first


async def test_an_image_without_the_order_key_costs_one_read(settings: Settings) -> None:
    sender = RecordingSender()
    rows = FakeRows(
        {
            ("msdyn_fulfillmentorders", FO): {
                "bciom_storehash": "abc123",
                "bciom_bcorderid": 100,
                "versionnumber": 43,
                "modifiedon": "2026-11-28T12:00:00Z",
                "msdyn_name": "not selected",
            }
        }
    )
    outcome = await handler(settings, sender, rows).forward(
        change(attributes={"bciom_shipped": True}, truncated=True)
    )
    assert isinstance(outcome, Forwarded)
    assert rows.calls == [
        ("msdyn_fulfillmentorders", FO, (*KEY_COLUMNS, "bciom_shipped", "bciom_bcshipmentid"))
    ]
    assert outcome.message_id == message_id_for("msdyn_fulfillmentorder", FO, "43")


async def test_a_row_gone_since_is_skipped(settings: Settings) -> None:
    sender = RecordingSender()
    outcome = await handler(settings, sender, FakeRows()).forward(change(attributes={}))
    assert isinstance(outcome, Skipped)
    assert "no longer exists" in outcome.reason
    assert sender.sent == []


@pytest.mark.parametrize(
    ("entity", "attributes", "reason"),
    [
        ("account", {"name": "Contoso"}, "not a table the connector follows"),
        ("salesorder", {"bciom_storehash": "other9", "bciom_bcorderid": 1}, "not served here"),
        ("salesorder", {"bciom_storehash": "abc123", "bciom_bcorderid": 0}, "no BigCommerce order"),
    ],
)
async def test_changes_that_name_no_served_order_are_skipped(
    settings: Settings, entity: str, attributes: dict[str, object], reason: str
) -> None:
    sender = RecordingSender()
    rows = FakeRows({("salesorders", SO): dict(attributes)})
    outcome = await handler(settings, sender, rows).forward(change(entity, SO, attributes))
    assert isinstance(outcome, Skipped)
    assert reason in outcome.reason
    assert sender.sent == []


async def test_an_unreadable_body_is_logged_and_raised(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    sender = RecordingSender()
    with pytest.raises(RemoteContextError):
        await handler(settings, sender).receive(b"not json", message_id="sb-9", delivery_count=3)
    assert sender.sent == []
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "unreadable Dataverse service endpoint message" in record.getMessage()
    assert record.__dict__["message_id"] == "sb-9"


async def test_a_failed_send_raises_so_the_message_is_redelivered(settings: Settings) -> None:
    with pytest.raises(SendError):
        await handler(settings, RecordingSender(fail=SendError("down"))).receive(FULFILLMENT_UPDATE)


def test_versions_are_the_same_whichever_path_saw_the_change() -> None:
    assert change_version({"versionnumber": 918273}) == "918273"
    assert change_version({"versionnumber": "918273"}) == "918273"
    assert change_version({"@odata.etag": 'W/"918273"'}) == "918273"
    assert change_version({}, row_version="918273") == "918273"
    # modifiedon, from an image (a datetime) or from the Web API (text), reads the same.
    from datetime import UTC, datetime

    moment = datetime(2026, 11, 28, 12, 0, 0, 500000, tzinfo=UTC)
    assert change_version({"modifiedon": moment}) == change_version(
        {"modifiedon": "2026-11-28T12:00:00Z"}
    )
    assert change_version({}, fallback="op-1") == "op-1"


# -- the change poll ----------------------------------------------------------------------------


@dataclass
class FakeTracking:
    """Change tracking: every `change` gets the next version; a delta link remembers one."""

    log: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    version: int = 1
    refuse: set[str] = field(default_factory=set)
    untracked: set[str] = field(default_factory=set)
    started: list[str] = field(default_factory=list)

    def change(self, entity_set: str, row: dict[str, Any]) -> None:
        self.version += 1
        self.log.append((self.version, entity_set, row))

    def link(self, entity_set: str) -> str:
        base = "https://contoso.crm.dynamics.com/api/data/v9.2/"
        return f"{base}{entity_set}?$deltatoken={self.version}"

    async def start_tracking(
        self, entity_set: str, *, select: Sequence[str], page_size: int | None = None
    ) -> Changes:
        self.started.append(entity_set)
        if entity_set in self.untracked:
            return Changes((), (), None)
        self.refuse.discard(entity_set)
        return Changes(({"existing": True},), (), self.link(entity_set))

    async def changes_since(self, delta_link: str, *, page_size: int | None = None) -> Changes:
        entity_set, token = delta_link.split("/v9.2/")[1].split("?$deltatoken=")
        if entity_set in self.refuse:
            raise BadRequestError("expired", method="GET", path=entity_set, status=400)
        rows = tuple(r for v, s, r in self.log if s == entity_set and v > int(token))
        return Changes(rows, (), self.link(entity_set))


@dataclass
class FakeCheckpoints:
    values: dict[str, str] = field(default_factory=dict)

    async def load(self, name: str) -> str | None:
        return self.values.get(name)

    async def save(self, name: str, value: str) -> None:
        self.values[name] = value


def poll(
    settings: Settings,
    tracking: FakeTracking,
    sender: RecordingSender,
    checkpoints: FakeCheckpoints,
) -> DataversePoll:
    return DataversePoll(settings, tracking, sender, checkpoints, new_id=lambda: "poll-run")


def fulfillment_row(version: int, order_id: int = 100) -> dict[str, Any]:
    return {
        "@odata.etag": f'W/"{version}"',
        "msdyn_fulfillmentorderid": FO_ID,
        "bciom_storehash": "abc123",
        "bciom_bcorderid": order_id,
        "versionnumber": version,
        "modifiedon": "2026-11-28T12:00:00Z",
        "bciom_shipped": True,
    }


async def test_the_first_poll_starts_tracking_and_forwards_nothing(settings: Settings) -> None:
    tracking, sender, checkpoints = FakeTracking(), RecordingSender(), FakeCheckpoints()
    report = await poll(settings, tracking, sender, checkpoints).run()
    assert report.enabled
    assert all(t.started for t in report.tables)
    assert sender.sent == []
    assert set(checkpoints.values) == {
        "dataverse-poll.msdyn_fulfillmentorders",
        "dataverse-poll.salesorders",
    }


async def test_a_polled_change_is_the_same_message_the_endpoint_sends(settings: Settings) -> None:
    tracking, sender, checkpoints = FakeTracking(), RecordingSender(), FakeCheckpoints()
    p = poll(settings, tracking, sender, checkpoints)
    await p.run()
    tracking.change("msdyn_fulfillmentorders", fulfillment_row(918273))
    # An order keyed in by hand in IOM: no BigCommerce order.
    tracking.change("salesorders", {"salesorderid": SO_ID, "bciom_storehash": None})
    report = await p.run()

    [(queue, message)] = sender.sent
    assert queue == "order-events"
    assert message.session_id == "abc123:order:100"
    assert message.correlation_id == "poll-run"
    endpoint = RecordingSender()
    await handler(settings, endpoint).receive(FULFILLMENT_UPDATE)
    assert message.message_id == endpoint.sent[0][1].message_id  # one change, one message id
    assert [(t.forwarded, t.skipped) for t in report.tables] == [(1, 0), (0, 1)]
    assert checkpoints.values["dataverse-poll.msdyn_fulfillmentorders"].endswith("=3")
    # Polled again: nothing new.
    await p.run()
    assert len(sender.sent) == 1


async def test_the_checkpoint_moves_only_after_the_sends(settings: Settings) -> None:
    tracking, checkpoints = FakeTracking(), FakeCheckpoints()
    await poll(settings, tracking, RecordingSender(), checkpoints).run()
    before = checkpoints.values["dataverse-poll.msdyn_fulfillmentorders"]
    tracking.change("msdyn_fulfillmentorders", fulfillment_row(7))
    with pytest.raises(PollError, match="msdyn_fulfillmentorders: down"):
        await poll(settings, tracking, RecordingSender(fail=SendError("down")), checkpoints).run()
    assert checkpoints.values["dataverse-poll.msdyn_fulfillmentorders"] == before
    # The next poll reads the same change again, with the same message id.
    sender = RecordingSender()
    await poll(settings, tracking, sender, checkpoints).run()
    [(_, message)] = sender.sent
    assert message.message_id == message_id_for("msdyn_fulfillmentorder", FO, "7")
    assert checkpoints.values["dataverse-poll.msdyn_fulfillmentorders"] != before


async def test_a_refused_delta_link_starts_again_from_now(settings: Settings) -> None:
    tracking, sender, checkpoints = FakeTracking(), RecordingSender(), FakeCheckpoints()
    p = poll(settings, tracking, sender, checkpoints)
    await p.run()
    tracking.refuse.add("salesorders")
    report = await p.run()
    assert [t.started for t in report.tables] == [False, True]
    assert tracking.started.count("salesorders") == 2


async def test_a_table_without_change_tracking_fails_the_run_but_not_the_others(
    settings: Settings,
) -> None:
    tracking, checkpoints = FakeTracking(untracked={"salesorders"}), FakeCheckpoints()
    with pytest.raises(PollError, match="enable change tracking"):
        await poll(settings, tracking, RecordingSender(), checkpoints).run()
    assert list(checkpoints.values) == ["dataverse-poll.msdyn_fulfillmentorders"]


async def test_with_a_service_endpoint_the_poll_does_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAVERSE_CHANGE_SOURCE", "service_endpoint")
    tracking, checkpoints = FakeTracking(), FakeCheckpoints()
    report = await poll(load_settings(), tracking, RecordingSender(), checkpoints).run()
    assert not report.enabled
    assert tracking.started == []
    assert checkpoints.values == {}


def test_polled_columns_are_the_key_and_what_says_what_happened() -> None:
    selects = {p.entity_set: set(p.select) for p in POLLED}
    for columns in selects.values():
        assert {"bciom_storehash", "bciom_bcorderid", "versionnumber", "modifiedon"} <= columns
    assert {"bciom_shipped", "bciom_trackingnumber"} <= selects["msdyn_fulfillmentorders"]
    assert {"statecode", "statuscode"} <= selects["salesorders"]


def test_row_message_skips_rows_of_other_tables(settings: Settings) -> None:
    outcome = row_message("account", {"accountid": FO_ID}, settings=settings, correlation_id="c")
    assert isinstance(outcome, Skipped)


# -- the local stack ------------------------------------------------------------------------------


def test_the_local_stack_makes_the_stand_in_the_service_endpoint(tmp_path: Path) -> None:
    local = plan({}, tmp_path)
    assert local.env["LOCAL_DATAVERSE_SERVICE_ENDPOINT"] == str(local.broker_path.absolute())
    assert local.env["DATAVERSE_CHANGE_SOURCE"] == "service_endpoint"
    assert local.env["DATAVERSE_POLL_SCHEDULE"] == "*/30 * * * * *"
    # A real Dataverse cannot post to the local broker: it is polled.
    real_dataverse = plan({"DATAVERSE_URL": "https://contoso.crm.dynamics.com"}, tmp_path)
    assert "LOCAL_DATAVERSE_SERVICE_ENDPOINT" not in real_dataverse.env
    assert "DATAVERSE_CHANGE_SOURCE" not in real_dataverse.env
    # An empty setting turns the stand-in's endpoint off, and so the poll on.
    off = plan({"LOCAL_DATAVERSE_SERVICE_ENDPOINT": ""}, tmp_path)
    assert "DATAVERSE_CHANGE_SOURCE" not in off.env
    chosen = plan({"DATAVERSE_CHANGE_SOURCE": "poll"}, tmp_path)
    assert "DATAVERSE_CHANGE_SOURCE" not in chosen.env


async def test_the_connectors_own_fulfillment_writes_are_not_forwarded(settings: Settings) -> None:
    sender = RecordingSender()
    h = handler(settings, sender)
    order = {"bciom_storehash": "abc123", "bciom_bcorderid": 100, "versionnumber": 7}
    created = await h.forward(change(attributes={**order, "bciom_shipped": False}))
    recorded = await h.forward(
        change(attributes={**order, "bciom_shipped": True, "bciom_bcshipmentid": 31})
    )
    assert isinstance(created, Skipped)
    assert isinstance(recorded, Skipped)
    assert sender.sent == []


async def test_only_a_cancelled_salesorder_is_forwarded(settings: Settings) -> None:
    sender = RecordingSender()
    h = handler(settings, sender)
    order = {"bciom_storehash": "abc123", "bciom_bcorderid": 7, "versionnumber": 5}
    active = await h.forward(change("salesorder", SO, {**order, "statecode": OptionSetValue(0)}))
    assert isinstance(active, Skipped)
    assert sender.sent == []
