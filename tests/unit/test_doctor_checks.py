"""The doctor's pure parts: Key Vault references, queue properties against their spec, the
Dataverse privileges read from the documented shapes, webhook findings, and the settings row."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import ConfigurationError, Settings
from shared.dataverse.schema import CONTACT, PRODUCT, SALESORDER
from shared.diagnostics import Status
from shared.diagnostics.configuration import check_settings
from shared.diagnostics.dataverse_access import (
    Privilege,
    definitions_path,
    held_privileges,
    shortfalls,
    table_privileges,
)
from shared.diagnostics.keyvault import (
    check_secrets,
    referenced_secret,
    unresolved_references,
)
from shared.diagnostics.queues import check_queue, differences, span, summary
from shared.diagnostics.webhooks import findings
from shared.messaging.message import InboundMessage
from shared.messaging.ports import AccessDeniedError, QueueNotFoundError, QueueProperties
from shared.messaging.queues import ORDER_EVENTS, ORDER_PARKED, QueueSpec
from shared.reconciliation.webhook_health import BlockedDomainState, HookReport, Repair

# -- Key Vault references -------------------------------------------------------------------------

URI_REFERENCE = (
    "@Microsoft.KeyVault(SecretUri=https://kv-abc.vault.azure.net/secrets/"
    "bigcommerce-abc123-access-token/)"
)
NAMED_REFERENCE = "@Microsoft.KeyVault(VaultName=kv-abc;SecretName=webhook-function-key)"


def test_both_reference_forms_name_their_vault_and_secret() -> None:
    assert referenced_secret(URI_REFERENCE) == "kv-abc/bigcommerce-abc123-access-token"
    assert referenced_secret(NAMED_REFERENCE) == "kv-abc/webhook-function-key"
    versioned = URI_REFERENCE.replace("token/)", "token/0123abcd)")
    assert referenced_secret(versioned) == "kv-abc/bigcommerce-abc123-access-token"


def test_unresolved_references_name_each_setting_secrets_first() -> None:
    environ = {
        "BIGCOMMERCE_STORES": "abc123",
        "AzureWebJobsStorage": " @microsoft.keyvault(SecretUri=https://kv.vault.azure.net/secrets/s)",
        "BIGCOMMERCE_ABC123_ACCESS_TOKEN": URI_REFERENCE,
        "BIGCOMMERCE_ABC123_WEBHOOK_SECRET": "a-resolved-secret",
        "WEBHOOK_FUNCTION_KEY": NAMED_REFERENCE,
        "DATAVERSE_URL": "https://org.crm.dynamics.com",
    }

    found = unresolved_references(environ)

    assert [u.setting for u in found] == [
        "BIGCOMMERCE_ABC123_ACCESS_TOKEN",
        "WEBHOOK_FUNCTION_KEY",
        "AzureWebJobsStorage",
    ]
    result = check_secrets(environ)
    assert result.status is Status.FAIL
    assert "BIGCOMMERCE_ABC123_ACCESS_TOKEN (kv-abc/bigcommerce-abc123-access-token)" in (
        result.detail
    )
    assert "Key Vault Secrets User" in result.hint


def test_resolved_secrets_pass() -> None:
    environ = {
        "BIGCOMMERCE_STORES": "abc123",
        "BIGCOMMERCE_ABC123_ACCESS_TOKEN": "token-value",
        "WEBHOOK_FUNCTION_KEY": "key-value",
        # A value that mentions a reference without being one is left alone.
        "NOTE": "see @Microsoft.KeyVault(...) in the docs",
    }

    result = check_secrets(environ)

    assert result.status is Status.PASS
    assert "2 secret settings set" in result.detail


def test_a_rotated_out_secret_that_no_longer_resolves_is_only_a_warning() -> None:
    environ = {
        "BIGCOMMERCE_STORES": "abc123",
        "BIGCOMMERCE_ABC123_ACCESS_TOKEN": "token-value",
        "BIGCOMMERCE_ABC123_WEBHOOK_SECRET_PREVIOUS": NAMED_REFERENCE,
    }

    result = check_secrets(environ)

    assert result.status is Status.WARN
    assert "BIGCOMMERCE_ABC123_WEBHOOK_SECRET_PREVIOUS" in result.detail
    assert "remove the setting" in result.hint
    environ["BIGCOMMERCE_ABC123_ACCESS_TOKEN"] = NAMED_REFERENCE
    assert check_secrets(environ).status is Status.FAIL


# -- the settings row -----------------------------------------------------------------------------


def test_invalid_settings_fail_the_row_with_their_one_line() -> None:
    def broken() -> Settings:
        raise ConfigurationError("invalid configuration: DATAVERSE_URL: required but not set")

    result, settings = check_settings(broken)

    assert settings is None
    assert result.status is Status.FAIL
    assert result.detail == "invalid configuration: DATAVERSE_URL: required but not set"


# -- queues ---------------------------------------------------------------------------------------


def as_specified(spec: QueueSpec = ORDER_EVENTS) -> QueueProperties:
    return QueueProperties(
        name=spec.name,
        requires_session=spec.requires_session,
        lock_duration=spec.lock_duration,
        max_delivery_count=spec.max_delivery_count,
        duplicate_detection_window=spec.duplicate_detection_window,
        default_time_to_live=spec.default_time_to_live,
        dead_lettering_on_expiration=spec.dead_lettering_on_expiration,
    )


def test_spans_read_like_the_portal() -> None:
    assert span(timedelta(minutes=1)) == "1m"
    assert span(timedelta(days=2)) == "2d"
    assert span(timedelta(hours=1, minutes=30)) == "1h30m"
    assert span(None) == "off"


def test_a_queue_as_specified_has_no_differences() -> None:
    assert differences(ORDER_EVENTS, as_specified()) == []
    assert summary(as_specified()).startswith("sessions on, lock 1m, 10 deliveries")


def test_every_differing_property_is_named_with_what_it_needs() -> None:
    found = replace(
        as_specified(),
        requires_session=False,
        lock_duration=timedelta(seconds=30),
        max_delivery_count=5,
        duplicate_detection_window=None,
        default_time_to_live=timedelta(days=1),
        dead_lettering_on_expiration=False,
    )

    assert differences(ORDER_EVENTS, found) == [
        "sessions off (needs on)",
        "lock duration 30s (needs 1m)",
        "max delivery count 5 (needs 10)",
        "duplicate detection off (needs 2d)",
        "time to live 1d (needs 14d)",
        "dead-lettering on expiration off (needs on)",
    ]


class FakeAdmin:
    """The two `QueueAdmin` calls the queue check makes."""

    def __init__(self, answer: QueueProperties | Exception, peek: Exception | None = None):
        self.answer = answer
        self.peek_error = peek
        self.peeked: list[str] = []

    async def queue_properties(self, queue: str) -> QueueProperties:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def peek_dead_letters(self, queue: str, max_messages: int) -> list[InboundMessage]:
        self.peeked.append(queue)
        if self.peek_error is not None:
            raise self.peek_error
        return []


async def test_a_queue_as_specified_passes() -> None:
    result = await check_queue(FakeAdmin(as_specified()), ORDER_EVENTS)  # type: ignore[arg-type]

    assert (result.name, result.status) == ("queue order-events", Status.PASS)


async def test_a_differing_queue_fails_with_what_to_change() -> None:
    found = replace(as_specified(ORDER_PARKED), max_delivery_count=10)

    result = await check_queue(FakeAdmin(found), ORDER_PARKED)  # type: ignore[arg-type]

    assert result.status is Status.FAIL
    assert result.detail == "max delivery count 10 (needs 100)"
    assert "queues.py" in result.hint


async def test_a_missing_queue_fails() -> None:
    result = await check_queue(FakeAdmin(QueueNotFoundError("x")), ORDER_EVENTS)  # type: ignore[arg-type]

    assert result.status is Status.FAIL
    assert result.detail == "the queue does not exist"


async def test_properties_it_may_not_read_are_a_warning_once_the_queue_is_peeked() -> None:
    admin = FakeAdmin(AccessDeniedError("401 Manage,EntityRead claims required"))

    result = await check_queue(admin, ORDER_EVENTS)  # type: ignore[arg-type]

    assert admin.peeked == ["order-events"]
    assert result.status is Status.WARN
    assert "needs Reader/Manage" in result.hint


async def test_an_unreachable_queue_raises_for_the_runner_to_report() -> None:
    admin = FakeAdmin(AccessDeniedError("no claims"), peek=OSError("connection refused"))

    with pytest.raises(OSError, match="connection refused"):
        await check_queue(admin, ORDER_EVENTS)  # type: ignore[arg-type]


# -- Dataverse privileges -------------------------------------------------------------------------


def definition(table: str, schema_name: str) -> dict[str, object]:
    return {
        "LogicalName": table,
        "MetadataId": "00000000-0000-0000-0000-000000000001",
        "Privileges": [
            {"PrivilegeType": kind, "Name": f"prv{kind}{schema_name}", "PrivilegeId": "x"}
            for kind in ("Create", "Read", "Write", "Delete")
        ],
    }


def role_privilege(name: str, depth: object = "Global") -> dict[str, object]:
    return {"Depth": depth, "PrivilegeName": name, "PrivilegeId": "x", "BusinessUnitId": "y"}


DEFINED = table_privileges(
    {
        "value": [
            definition("contact", "Contact"),
            definition("salesorder", "SalesOrder"),
            definition("product", "Product"),
        ]
    }
)


def test_privilege_names_come_from_the_table_definitions() -> None:
    assert DEFINED["contact"]["Write"] == "prvWriteContact"
    assert table_privileges(definition("uom", "Uom")) == {
        "uom": {k: f"prv{k}Uom" for k in ("Create", "Read", "Write", "Delete")}
    }
    assert "LogicalName eq 'contact' or LogicalName eq 'account'" in definitions_path()


def test_held_privileges_keep_the_deepest_depth_of_each() -> None:
    held = held_privileges(
        {
            "RolePrivileges": [
                role_privilege("prvReadContact", "Basic"),
                role_privilege("prvReadContact", "Global"),
                role_privilege("prvWriteContact", 1),  # older forms give the value
            ]
        }
    )

    assert held == {"prvReadContact": "Global", "prvWriteContact": "Local"}


def test_shortfalls_name_missing_and_shallow_privileges() -> None:
    everything = {
        f"prv{k}{n}": "Global"
        for n in ("Contact", "SalesOrder", "Product")
        for k in ("Create", "Read", "Write")
    }
    tables = (CONTACT, SALESORDER, PRODUCT)
    assert shortfalls(tables, DEFINED, everything) == []

    held = {
        **everything,
        "prvWriteSalesOrder": "Basic",
        "prvCreateProduct": "Basic",  # product is only read: not needed
    }
    del held["prvCreateContact"]
    del held["prvReadProduct"]

    found = shortfalls(tables, DEFINED, held)

    assert [(s.table, s.privilege, s.depth) for s in found] == [
        ("contact", Privilege.CREATE, None),
        ("salesorder", Privilege.WRITE, "Basic"),
        ("product", Privilege.READ, None),
    ]
    assert found[0].describe() == "create contact (prvCreateContact)"
    assert found[1].describe() == "write salesorder only at Basic depth"


def test_a_table_without_its_definition_is_left_to_the_schema_check() -> None:
    assert shortfalls((CONTACT,), {}, {}) == []


# -- webhooks -------------------------------------------------------------------------------------


def test_webhook_findings_say_what_the_health_check_would_repair() -> None:
    report = HookReport(
        store_hash="abc123",
        checked_at=datetime(2026, 1, 1, tzinfo=UTC),
        trigger="doctor",
        dry_run=True,
        repairs=(
            Repair(
                ("create",), "store/shipment/*", "https://x/api/webhooks/bigcommerce", None, None
            ),
            Repair(("reenable", "headers"), "store/order/*", "https://x", 7, None),
        ),
        blocked_domains=(BlockedDomainState("https://x", 120),),
    )

    assert findings(report) == [
        "missing store/shipment/*",
        "store/order/* (hook 7) inactive, sends other headers",
        "BigCommerce blocks deliveries to https://x (120s left)",
    ]
