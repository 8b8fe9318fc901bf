"""The lifecycle flow file: the shipped default loads, a bad file fails with one line naming the
key, and `steps_for` gives each trigger's steps in file order."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import ConfigurationError
from shared.orchestration.flow import (
    DEFAULT_FLOW_FILE,
    FLOW_FILE_SETTING,
    FlowConfig,
    FlowConfigError,
    StepName,
    Trigger,
    flow_file,
    load_flow,
    parse_flow,
)

DEFAULT: dict[str, Any] = yaml.safe_load(DEFAULT_FLOW_FILE.read_text(encoding="utf-8"))


def changed(edit: Any) -> dict[str, Any]:
    """The default flow document after `edit(document)`."""
    raw = copy.deepcopy(DEFAULT)
    edit(raw)
    return raw


def error_of(raw: object) -> str:
    with pytest.raises(FlowConfigError) as caught:
        parse_flow(raw)
    message = str(caught.value)
    assert "\n" not in message
    assert isinstance(caught.value, ConfigurationError)  # start-up prints it and stops
    return message


# -- the shipped file ------------------------------------------------------------------------------


def test_the_default_file_loads() -> None:
    flow = load_flow(environ={})

    assert flow_file({}) == DEFAULT_FLOW_FILE
    assert flow.version == 1
    assert flow.name == "bigcommerce-default"
    assert [s.step for s in flow.steps] == list(StepName)
    assert flow.validation.manual_review_above == Decimal(5000)
    assert flow.validation.payment_statuses[-1] == ""
    assert flow.fulfillment.max_splits == 2
    assert flow.fulfillment.when_unsourced == "hold"
    assert [s.name for s in flow.fulfillment.sources] == ["WH-EAST", "WH-EU", "DROPSHIP"]
    assert flow.fulfillment.source("WH-EU").serves("de")
    assert not flow.fulfillment.source("WH-EU").serves("US")
    assert flow.fulfillment.source("DROPSHIP").serves(None)
    assert flow.bigcommerce_status.on_hold == 12
    assert flow.close_salesorders is True
    assert flow.retry.max_attempts == 8


def test_load_flow_reads_the_default_file_when_the_setting_is_empty() -> None:
    assert load_flow(environ={FLOW_FILE_SETTING: "  "}) == load_flow(environ={})


def test_connector_flow_file_names_another_file_yaml_or_json(tmp_path: Path) -> None:
    custom = changed(lambda r: r.update(name="custom"))
    as_json = tmp_path / "flow.json"
    as_json.write_text(json.dumps(custom))
    as_yaml = tmp_path / "flow.yaml"
    as_yaml.write_text(yaml.safe_dump(custom))

    assert load_flow(environ={FLOW_FILE_SETTING: str(as_json)}).name == "custom"
    assert load_flow(environ={FLOW_FILE_SETTING: f" {as_yaml} "}).name == "custom"
    assert load_flow(as_yaml).name == "custom"


def test_the_policies_have_defaults_when_left_out() -> None:
    flow = parse_flow(
        {
            "version": 1,
            "name": "minimal",
            "steps": [{"step": "sync_order", "triggers": ["bigcommerce_order"]}],
            "fulfillment": {"sources": [{"name": "ANY", "kind": "store", "priority": 0}]},
        }
    )
    assert flow.validation.payment_statuses == ("authorized", "captured", "paid", "")
    assert flow.validation.manual_review_above is None
    assert flow.fulfillment.max_splits == 1
    assert flow.fulfillment.sources[0].inventory == "unlimited"
    assert flow.bigcommerce_status.completed == 10
    assert flow.retry.base_seconds == 2.0


def test_codes_and_statuses_are_normalised() -> None:
    flow = parse_flow(
        changed(
            lambda r: (
                r["validation"].update(payment_statuses=[" Paid ", "CAPTURED"]),
                r["validation"].update(blocked_countries=[" ru", "by"]),
                r["fulfillment"]["sources"][0].update(countries=["us", " Ca "]),
            )
        )
    )
    assert flow.validation.payment_statuses == ("paid", "captured")
    assert flow.validation.blocked_countries == ("RU", "BY")
    assert flow.fulfillment.sources[0].countries == ("US", "CA")


def test_a_configured_inventory_and_backorder_load() -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["fulfillment"].update(when_unsourced="backorder", backorder_source="WH-EAST")
        raw["fulfillment"]["sources"][0]["inventory"] = {"ABC-1": 5, "XYZ": "2.5"}
        raw["fulfillment"]["sources"][1]["inventory"] = "dataverse"

    fulfillment = parse_flow(changed(edit)).fulfillment
    assert fulfillment.backorder_source == "WH-EAST"
    assert fulfillment.sources[0].inventory == {"ABC-1": Decimal(5), "XYZ": Decimal("2.5")}
    assert fulfillment.sources[1].inventory == "dataverse"


# -- bad files -------------------------------------------------------------------------------------


def _move(raw: dict[str, Any], frm: int, to: int) -> None:
    raw["steps"].insert(to, raw["steps"].pop(frm))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda r: r["steps"][0].update(step="sync"),
            "steps.0.step: input should be 'sync_order', 'cancel', 'validate', 'choose_source', "
            "'ship', 'complete' or 'record_refunds'",
            id="unknown step",
        ),
        pytest.param(
            lambda r: r["steps"][1]["triggers"].append("webhook"),
            "steps.1.triggers.4: input should be 'bigcommerce_order', 'bigcommerce_shipment', "
            "'bigcommerce_refund', 'dataverse_order', 'dataverse_fulfillment', 'replay' or "
            "'reconcile'",
            id="unknown trigger",
        ),
        pytest.param(
            lambda r: r["steps"][0].update(triggers=[]),
            "steps.0.triggers: tuple should have at least 1 item after validation, not 0",
            id="step without triggers",
        ),
        pytest.param(
            lambda r: r["steps"].append({"step": "cancel", "triggers": ["replay"]}),
            "steps.7.step: cancel appears twice",
            id="duplicate step",
        ),
        pytest.param(
            lambda r: _move(r, 2, 0),
            "steps.0.step: validate must come after sync_order",
            id="validate before sync_order",
        ),
        pytest.param(
            lambda r: _move(r, 3, 1),
            "steps.1.step: choose_source must come after validate",
            id="choose_source before validate",
        ),
        pytest.param(
            lambda r: r["steps"].__setitem__(slice(None), []),
            "steps: tuple should have at least 1 item after validation, not 0",
            id="no steps",
        ),
        pytest.param(
            lambda r: r["fulfillment"]["sources"][2].update(name="WH-EAST"),
            "fulfillment.sources.2.name: 'WH-EAST' appears twice",
            id="duplicate source names",
        ),
        pytest.param(
            lambda r: r["fulfillment"].update(when_unsourced="backorder"),
            "fulfillment.backorder_source: required when when_unsourced is backorder",
            id="backorder without source",
        ),
        pytest.param(
            lambda r: r["fulfillment"].update(when_unsourced="backorder", backorder_source="NOPE"),
            "fulfillment.backorder_source: 'NOPE' is not a source",
            id="backorder at an unknown source",
        ),
        pytest.param(
            lambda r: r["fulfillment"].update(when_unsourced="wait"),
            "fulfillment.when_unsourced: input should be 'hold' or 'backorder'",
            id="unknown when_unsourced",
        ),
        pytest.param(
            lambda r: r["fulfillment"]["sources"][0].update(countries=["US", "USA"]),
            "fulfillment.sources.0.countries.1: 'USA' is not an ISO 3166-1 alpha-2 country code",
            id="bad source country code",
        ),
        pytest.param(
            lambda r: r["validation"].update(blocked_countries=["R1"]),
            "validation.blocked_countries.0: 'R1' is not an ISO 3166-1 alpha-2 country code",
            id="bad blocked country code",
        ),
        pytest.param(
            lambda r: r["fulfillment"]["sources"][0].update(inventory={"A": 1, "B-2": -2}),
            "fulfillment.sources.0.inventory.B-2: a quantity cannot be negative",
            id="negative stock",
        ),
        pytest.param(
            lambda r: r["fulfillment"].update(colour="red"),
            "fulfillment.colour: unknown key",
            id="unknown key",
        ),
        pytest.param(
            lambda r: r["steps"][0].update(trigger=["replay"]),
            "steps.0.trigger: unknown key",
            id="unknown step key",
        ),
        pytest.param(
            lambda r: r.update(version=2),
            "version: input should be 1",
            id="unsupported version",
        ),
        pytest.param(
            lambda r: r.pop("fulfillment"),
            "fulfillment: required",
            id="no fulfillment",
        ),
        pytest.param(
            lambda r: r["fulfillment"].update(sources=[]),
            "fulfillment.sources: tuple should have at least 1 item after validation, not 0",
            id="no sources",
        ),
        pytest.param(
            lambda r: r["fulfillment"].update(max_splits=0),
            "fulfillment.max_splits: input should be greater than or equal to 1",
            id="max_splits 0",
        ),
        pytest.param(
            lambda r: r["fulfillment"]["sources"][0].update(priority=-1),
            "fulfillment.sources.0.priority: input should be greater than or equal to 0",
            id="negative priority",
        ),
        pytest.param(
            lambda r: r["fulfillment"]["sources"][0].update(kind="shop"),
            "fulfillment.sources.0.kind: input should be 'warehouse', '3pl', 'store' or 'dropship'",
            id="unknown source kind",
        ),
        pytest.param(
            lambda r: r["validation"].update(manual_review_above=0),
            "validation.manual_review_above: must be above 0 (leave it out for no limit)",
            id="review limit 0",
        ),
        pytest.param(
            lambda r: r["validation"].update(ship_to_fields=["street_3"]),
            "validation.ship_to_fields.0: input should be 'street_1', 'city', 'zip', 'state', "
            "'country_iso2', 'first_name' or 'last_name'",
            id="unknown ship-to field",
        ),
        pytest.param(
            lambda r: r["bigcommerce_status"].update(on_hold=15),
            "bigcommerce_status.on_hold: input should be less than or equal to 14",
            id="status id out of range",
        ),
    ],
)
def test_a_bad_flow_fails_with_one_line_naming_the_key(edit: Any, message: str) -> None:
    assert error_of(changed(edit)) == f"invalid flow: {message}"


def test_an_unknown_inventory_names_the_source_inventory() -> None:
    message = error_of(changed(lambda r: r["fulfillment"]["sources"][0].update(inventory="ask")))
    assert message.startswith("invalid flow: fulfillment.sources.0.inventory")
    assert "'unlimited' or 'dataverse'" in message


def test_a_document_that_is_not_keys_fails() -> None:
    assert error_of(["version", 1]) == (
        "invalid flow: the file must hold keys (version, steps, …), not a list"
    )
    assert error_of(None) == (
        "invalid flow: the file must hold keys (version, steps, …), not a NoneType"
    )


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nname: x\nsteps: [\n  {step: sync_order, triggers: [}\n")

    with pytest.raises(FlowConfigError) as caught:
        load_flow(broken)

    message = str(caught.value)
    assert message.startswith(f"invalid flow: {broken}: not valid YAML: ")
    assert "(line 4, column" in message
    assert "\n" not in message


def test_a_json_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "version": 1,\n  "name": }\n')

    with pytest.raises(FlowConfigError) as caught:
        load_flow(environ={FLOW_FILE_SETTING: str(broken)})

    assert str(caught.value).startswith(f"invalid flow: {broken}: not valid JSON: ")
    assert "(line 3, column" in str(caught.value)


def test_a_missing_file_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(FlowConfigError) as caught:
        load_flow(environ={FLOW_FILE_SETTING: str(missing)})

    assert str(caught.value) == f"invalid flow: CONNECTOR_FLOW_FILE: no file at {missing}"


def test_a_bad_file_fails_the_same_way_through_load_flow(tmp_path: Path) -> None:
    bad = tmp_path / "flow.yaml"
    bad.write_text(yaml.safe_dump(changed(lambda r: r["fulfillment"].update(colour="red"))))

    with pytest.raises(FlowConfigError, match=r"^invalid flow: fulfillment\.colour: unknown key$"):
        load_flow(environ={FLOW_FILE_SETTING: str(bad)})


def test_the_flow_is_frozen() -> None:
    flow = load_flow(environ={})
    with pytest.raises(ValueError, match="frozen"):
        flow.name = "other"  # type: ignore[misc]


# -- steps_for -------------------------------------------------------------------------------------


S = StepName


@pytest.mark.parametrize(
    ("trigger", "steps"),
    [
        (
            Trigger.BIGCOMMERCE_ORDER,
            (S.SYNC_ORDER, S.CANCEL, S.VALIDATE, S.CHOOSE_SOURCE, S.COMPLETE),
        ),
        (Trigger.BIGCOMMERCE_SHIPMENT, (S.SYNC_ORDER, S.COMPLETE)),
        (Trigger.BIGCOMMERCE_REFUND, (S.SYNC_ORDER, S.RECORD_REFUNDS)),
        (Trigger.DATAVERSE_ORDER, (S.CANCEL,)),
        (Trigger.DATAVERSE_FULFILLMENT, (S.SHIP, S.COMPLETE)),
        (Trigger.REPLAY, tuple(StepName)),
        (Trigger.RECONCILE, tuple(StepName)),
    ],
)
def test_steps_for_gives_the_default_flows_steps_of_a_trigger_in_order(
    trigger: Trigger, steps: tuple[StepName, ...]
) -> None:
    assert load_flow(environ={}).steps_for(trigger) == steps


def test_steps_for_follows_the_file_and_gives_nothing_for_an_unused_trigger() -> None:
    flow = FlowConfig.model_validate(
        {
            "version": 1,
            "name": "small",
            "steps": [
                {"step": "sync_order", "triggers": ["replay", "bigcommerce_order"]},
                {"step": "record_refunds", "triggers": ["bigcommerce_refund", "replay"]},
                {"step": "cancel", "triggers": ["replay"]},
            ],
            "fulfillment": {"sources": [{"name": "ANY", "kind": "store", "priority": 0}]},
        }
    )
    assert flow.steps_for(Trigger.REPLAY) == (S.SYNC_ORDER, S.RECORD_REFUNDS, S.CANCEL)
    assert flow.steps_for(Trigger.BIGCOMMERCE_REFUND) == (S.RECORD_REFUNDS,)
    assert flow.steps_for(Trigger.DATAVERSE_FULFILLMENT) == ()
    assert flow.steps_for(Trigger("bigcommerce_order")) == (S.SYNC_ORDER,)
