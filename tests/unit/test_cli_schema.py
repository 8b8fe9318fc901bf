"""The `schema` CLI commands, run in-process over HTTP against the in-memory metadata endpoint.

`cli.schema.HTTP_TRANSPORT` is replaced by a MockTransport serving the fake at the Web API root,
so the real adapter, token selection and URL handling are exercised; only the network is not.
"""

from __future__ import annotations

import io
import json

import httpx
import pytest

from cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from tests.support.dataverse_metadata import FakeMetadataApi, over_http, standard_environment

TOKEN = "local-dataverse-token"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeMetadataApi:
    api = FakeMetadataApi(standard_environment())
    monkeypatch.setenv("DATAVERSE_URL", "http://127.0.0.1:7073")
    monkeypatch.setenv("LOCAL_DATAVERSE_TOKEN", TOKEN)
    monkeypatch.setattr("cli.schema.HTTP_TRANSPORT", over_http(api, token=TOKEN))
    return api


def run(*argv: str, stdin: io.StringIO | None = None) -> int:
    return main(["schema", *argv], stdin=stdin or io.StringIO())


def test_check_lists_the_differences_and_exits_1_without_writing(
    fake: FakeMetadataApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("check") == EXIT_FAILURE

    out = capsys.readouterr().out.splitlines()
    assert "create: bciom_orderjournal: table: missing" in out
    assert "create: contact: column bciom_customerkey: missing" in out
    assert "create: salesorder: key bciom_salesorder_bcorder: missing" in out
    assert out[-1].startswith("not in sync: ")
    assert "create" in out[-1]
    assert fake.posts == []


def test_check_json_is_machine_readable(
    fake: FakeMetadataApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("check", "--json") == EXIT_FAILURE

    body = json.loads(capsys.readouterr().out)
    assert body["in_sync"] is False
    tables = {d["table"]: d for d in body["differences"] if d["subject"] == "table"}
    assert set(tables) == {
        "bciom_orderjournal",
        "bciom_orderrefund",
        "bciom_orderrefundline",
        "bciom_inventorylevel",
        "bciom_syncstate",
    }
    assert tables["bciom_orderjournal"] == {
        "table": "bciom_orderjournal",
        "subject": "table",
        "severity": "create",
        "detail": "missing",
        "write": "create table bciom_orderjournal",
    }


def test_provision_refuses_without_yes_when_not_interactive(
    fake: FakeMetadataApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("provision", "--poll", "0") == EXIT_USAGE

    captured = capsys.readouterr()
    assert "would make " in captured.out
    assert "  create table bciom_orderjournal" in captured.out
    assert "refusing to provision without --yes" in captured.err
    assert fake.posts == []


def test_provision_asks_on_a_terminal_and_a_no_changes_nothing(
    fake: FakeMetadataApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("provision", "--poll", "0", stdin=Terminal("n\n")) == EXIT_FAILURE

    assert "aborted: nothing was changed" in capsys.readouterr().out
    assert fake.posts == []


def test_provision_with_yes_creates_everything_then_check_is_clean(
    fake: FakeMetadataApi, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("provision", "--yes", "--poll", "0", "--solution", "bciom") == EXIT_OK

    out = capsys.readouterr().out
    assert "done: create table bciom_orderjournal" in out
    assert "key: contact: key bciom_contact_customer: Active" in out
    assert out.rstrip().endswith("every key is Active")

    fake.posts.clear()
    assert run("check") == EXIT_OK
    assert capsys.readouterr().out.splitlines()[-1] == "in sync with the schema"
    assert run("provision", "--poll", "0") == EXIT_OK  # nothing to write: no question asked
    assert fake.posts == []


def test_provision_reports_failed_keys_with_the_way_out(
    fake: FakeMetadataApi, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.failing_keys = frozenset({"bciom_salesorder_bcorder"})

    assert run("provision", "--yes", "--poll", "0") == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "failed key index(es): salesorder.bciom_salesorder_bcorder" in err
    assert "--reactivate-failed" in err

    assert run("provision", "--poll", "0", "--reactivate-failed") == EXIT_OK
    assert fake.posted("ReactivateEntityKey") == [
        {"EntityLogicalName": "salesorder", "EntityKeyLogicalName": "bciom_salesorder_bcorder"}
    ]


def test_provision_refuses_to_write_around_a_conflict(
    fake: FakeMetadataApi, capsys: pytest.CaptureFixture[str]
) -> None:
    del fake.tables["salesorderdetail"].attributes["quantity"]

    assert run("provision", "--yes") == EXIT_FAILURE

    captured = capsys.readouterr()
    assert "conflict: salesorderdetail: column quantity: standard column missing" in captured.out
    assert "refusing to provision: resolve the 1 conflict(s)" in captured.err
    assert fake.posts == []


def test_the_stand_in_needs_its_token(
    fake: FakeMetadataApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOCAL_DATAVERSE_TOKEN")

    assert run("check") == EXIT_USAGE

    assert capsys.readouterr().err.strip() == (
        "invalid configuration: LOCAL_DATAVERSE_TOKEN: required for the local Dataverse "
        "stand-in at http://127.0.0.1:7073 (the local stack sets it)"
    )


def test_a_wrong_token_is_an_error_not_a_traceback(
    fake: FakeMetadataApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCAL_DATAVERSE_TOKEN", "stale")

    assert run("check") == EXIT_FAILURE

    err = capsys.readouterr().err.strip()
    assert err.startswith("error: MetadataApiError: GET EntityDefinitions(LogicalName='contact')")
    assert err.endswith("HTTP 401 0x80040220: The user is not authenticated.")


def unreachable(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request may be sent: {request.url}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "invalid configuration: DATAVERSE_URL: required but not set"),
        (
            "http://contoso.crm.dynamics.com",
            "invalid configuration: DATAVERSE_URL: must use https (plain http is accepted only "
            "for 127.0.0.1/localhost)",
        ),
    ],
)
def test_dataverse_url_must_be_set_and_https_off_this_machine(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str | None,
    message: str,
) -> None:
    if url is None:
        monkeypatch.delenv("DATAVERSE_URL", raising=False)
    else:
        monkeypatch.setenv("DATAVERSE_URL", url)
    monkeypatch.setattr("cli.schema.HTTP_TRANSPORT", httpx.MockTransport(unreachable))

    assert run("check") == EXIT_USAGE
    assert capsys.readouterr().err.strip() == message


def test_wait_must_be_a_non_negative_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("provision", "--wait", "-1") == EXIT_USAGE
    assert "--wait: must be a number of seconds, 0 or more" in capsys.readouterr().err
