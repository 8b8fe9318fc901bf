"""OData text: key segments, binds, filter literals, query strings, OData-EntityId parsing.

Sources (MicrosoftDocs/powerapps-docs, powerapps-docs/developer/data-platform/):
[AKUSE] use-alternate-key-reference-record.md (08/09/2022), [AKDEF] define-alternate-keys-entity.md,
[UPSERT] use-upsert-insert-update-record.md (03/09/2026), [FILTER] webapi/query/filter-rows.md,
[CREATE] webapi/create-entity-web-api.md, [BATCH] webapi/execute-batch-operations-using-web-api.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.dataverse.models import Bind
from shared.dataverse.odata import (
    FORBIDDEN_KEY_CHARACTERS,
    KeyValueError,
    bind_reference,
    entity_path,
    eq,
    filter_literal,
    json_bytes,
    key_segment,
    parse_entity_id,
    query_string,
    row_body,
)

GUID = uuid.UUID("00000000-0000-0000-0000-000000000001")


def test_key_forms_match_the_documented_examples() -> None:
    # [AKUSE] table: primary key, single alternate key, multi-part key, lookup-column key.
    assert entity_path("accounts", GUID) == "accounts(00000000-0000-0000-0000-000000000001)"
    assert (
        entity_path("accounts", {"accountnumber": "ABC123"}) == "accounts(accountnumber='ABC123')"
    )
    assert (
        entity_path("contacts", {"firstname": "Joe", "emailaddress1": "abc@example.com"})
        == "contacts(firstname='Joe',emailaddress1='abc@example.com')"
    )
    assert (
        entity_path(
            "accounts",
            {"_primarycontactid_value": uuid.UUID("00000000-0000-0000-0000-000000000002")},
        )
        == "accounts(_primarycontactid_value=00000000-0000-0000-0000-000000000002)"
    )


def test_numbers_are_unquoted() -> None:
    # [UPSERT] "example_records(example_key1=2,example_key2=2)".
    assert key_segment({"example_key1": 2, "example_key2": 2}) == "(example_key1=2,example_key2=2)"
    assert key_segment({"amount": Decimal("12.50")}) == "(amount=12.50)"


def test_single_quotes_are_doubled_and_the_rest_percent_encoded() -> None:
    assert key_segment({"name": "O'Brien"}) == "(name='O''Brien')"
    assert key_segment({"name": "a b#c"}) == "(name='a%20b%23c')"
    assert key_segment({"name": "Zoë"}) == "(name='Zo%C3%AB')"


@pytest.mark.parametrize("character", sorted(FORBIDDEN_KEY_CHARACTERS))
def test_characters_dataverse_cannot_address_by_key_are_refused(character: str) -> None:
    # [AKDEF]: with / < > * % & : \ ? + in a key value, GET and PATCH by key do not work.
    with pytest.raises(KeyValueError, match="cannot address by key") as raised:
        key_segment({"bciom_customerkey": f"e{character}x"})
    assert "bciom_customerkey" in str(raised.value)


def test_the_forbidden_set_is_exactly_the_documented_one() -> None:
    assert set("/<>*%&:\\?+") == FORBIDDEN_KEY_CHARACTERS


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (True, "booleans"),
        ("", "empty"),
        (1.5, "not a key type"),
        (datetime(2026, 1, 1), "timezone-aware"),
        (Decimal("NaN"), "finite"),
    ],
)
def test_values_that_cannot_be_keys_are_refused(value: object, why: str) -> None:
    with pytest.raises(KeyValueError, match=why):
        key_segment({"k": value})  # type: ignore[dict-item]


def test_datetimes_are_utc_literals() -> None:
    when = datetime(2026, 5, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert key_segment({"d": when}) == "(d=2026-05-01T00:00:00Z)"


def test_names_must_be_odata_identifiers() -> None:
    with pytest.raises(KeyValueError, match="entity set"):
        entity_path("accounts?$top=1", GUID)
    with pytest.raises(KeyValueError, match="key column"):
        key_segment({"name)": "x"})
    with pytest.raises(KeyValueError, match="at least one"):
        key_segment({})


def test_bind_references_by_id_and_by_alternate_key() -> None:
    # [CREATE] "/accounts(<guid>)"; [AKUSE] "/accounts(accountnumber='ABC123')".
    assert bind_reference("accounts", GUID) == "/accounts(00000000-0000-0000-0000-000000000001)"
    assert bind_reference("accounts", {"accountnumber": "ABC123"}) == (
        "/accounts(accountnumber='ABC123')"
    )


def test_row_body_turns_binds_into_odata_bind_annotations() -> None:
    # [CREATE]/[ASSOC]: "<nav>@odata.bind"; polymorphic customerid uses customerid_contact.
    body = row_body(
        {
            "name": "Order 1",
            "customerid": Bind("contacts", {"k": "c-1"}, navigation="customerid_contact"),
            "pricelevelid": Bind("pricelevels", GUID),
            "description": None,
        }
    )
    assert body == {
        "name": "Order 1",
        "customerid_contact@odata.bind": "/contacts(k='c-1')",
        "pricelevelid@odata.bind": "/pricelevels(00000000-0000-0000-0000-000000000001)",
        "description": None,
    }


def test_filter_literals() -> None:
    # [FILTER]: strings single-quoted with ' doubled; null, booleans and numbers bare.
    assert filter_literal("O'Brien") == "'O''Brien'"
    assert filter_literal(None) == "null"
    assert filter_literal(False) == "false"
    assert filter_literal(Decimal("1.50")) == "1.50"
    assert filter_literal(GUID) == str(GUID)
    assert filter_literal(datetime(2026, 5, 1, tzinfo=UTC)) == "2026-05-01T00:00:00Z"
    assert eq("emailaddress1", "a@b.c") == "emailaddress1 eq 'a@b.c'"


def test_query_string_keeps_dollar_names_and_encodes_special_characters() -> None:
    # [FILTER]: special characters in values are URL-encoded; $select lists are comma-joined.
    query = query_string(
        {
            "$select": ["fullname", "emailaddress1"],
            "$filter": eq("fullname", "A&B #1+2%"),
            "$top": 3,
            "$count": True,
            "$expand": None,
        }
    )
    assert query == (
        "$select=fullname,emailaddress1"
        "&$filter=fullname%20eq%20'A%26B%20%231%2B2%25'"
        "&$top=3&$count=true"
    )


def test_entity_id_by_guid_and_by_alternate_key() -> None:
    # [BATCH] responses: OData-EntityId: [Organization Uri]/api/data/v9.2/tasks(<guid>);
    # [UPSERT]: OData-EntityId: .../example_records(example_key1=2,example_key2=2).
    by_id = parse_entity_id(
        "[Organization Uri]/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)"
    )
    assert by_id is not None
    assert by_id.entity_set == "tasks"
    assert by_id.id == uuid.UUID("e73ffc82-e292-ed11-aad1-000d3a9933c9")

    by_key = parse_entity_id(
        "https://org.crm.dynamics.com/api/data/v9.2/example_records(example_key1=2,example_key2=2)"
    )
    assert by_key is not None
    assert (by_key.entity_set, by_key.key_text, by_key.id) == (
        "example_records",
        "example_key1=2,example_key2=2",
        None,
    )
    assert parse_entity_id("https://org.crm.dynamics.com/api/data/v9.2/WhoAmI") is None


def test_json_bodies_carry_decimals_as_numbers() -> None:
    assert json_bytes({"p": Decimal("19.99"), "q": Decimal("2"), "id": GUID}) == (
        b'{"p":19.99,"q":2,"id":"00000000-0000-0000-0000-000000000001"}'
    )
