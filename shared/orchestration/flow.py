"""The lifecycle flow: a versioned, validated file saying which steps run on which triggers, in
what order, with which validation and fulfillment policies (see `default_flow.yaml`).

`CONNECTOR_FLOW_FILE` names another file. It is read once at start-up; an invalid flow raises
`FlowConfigError` with one line naming the key path, and the app does not start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.config.documents import At, one_line, read_document
from shared.config.errors import ConfigurationError

FLOW_FILE_SETTING: Final = "CONNECTOR_FLOW_FILE"
DEFAULT_FLOW_FILE: Final = Path(__file__).with_name("default_flow.yaml")
FLOW_VERSION: Final = 1


class FlowConfigError(ConfigurationError):
    """A flow file that cannot be used; the message is one line naming the key path."""


class Trigger(StrEnum):
    BIGCOMMERCE_ORDER = "bigcommerce_order"
    BIGCOMMERCE_SHIPMENT = "bigcommerce_shipment"
    BIGCOMMERCE_REFUND = "bigcommerce_refund"
    DATAVERSE_ORDER = "dataverse_order"
    DATAVERSE_FULFILLMENT = "dataverse_fulfillment"
    REPLAY = "replay"
    RECONCILE = "reconcile"


class StepName(StrEnum):
    SYNC_ORDER = "sync_order"
    CANCEL = "cancel"
    VALIDATE = "validate"
    CHOOSE_SOURCE = "choose_source"
    SHIP = "ship"
    COMPLETE = "complete"
    RECORD_REFUNDS = "record_refunds"


# Steps that read what an earlier step writes must come after it.
_AFTER: Final[Mapping[StepName, tuple[StepName, ...]]] = {
    StepName.VALIDATE: (StepName.SYNC_ORDER,),
    StepName.CHOOSE_SOURCE: (StepName.VALIDATE,),
    StepName.SHIP: (StepName.SYNC_ORDER,),
    StepName.COMPLETE: (StepName.SYNC_ORDER,),
    StepName.CANCEL: (StepName.SYNC_ORDER,),
    StepName.RECORD_REFUNDS: (StepName.SYNC_ORDER,),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepConfig(_Strict):
    step: StepName
    triggers: tuple[Trigger, ...] = Field(min_length=1)


class ValidationPolicy(_Strict):
    payment_statuses: tuple[str, ...] = ("authorized", "captured", "paid", "")
    ship_to_fields: tuple[
        Literal["street_1", "city", "zip", "state", "country_iso2", "first_name", "last_name"],
        ...,
    ] = ("street_1", "city", "zip", "country_iso2")
    manual_review_above: Decimal | None = None
    blocked_countries: tuple[str, ...] = ()
    require_products: bool = True

    @field_validator("payment_statuses")
    @classmethod
    def _folded(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value)

    @field_validator("blocked_countries")
    @classmethod
    def _countries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _country_codes(value)

    @field_validator("manual_review_above")
    @classmethod
    def _positive(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value <= 0:
            raise ValueError("must be above 0 (leave it out for no limit)")
        return value


class Source(_Strict):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["warehouse", "3pl", "store", "dropship"]
    priority: int = Field(ge=0)
    countries: tuple[str, ...] = ()
    inventory: Literal["unlimited", "dataverse"] | dict[str, Decimal] = "unlimited"

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _country_codes(value)

    @field_validator("inventory")
    @classmethod
    def _stock(
        cls, value: Literal["unlimited", "dataverse"] | dict[str, Decimal]
    ) -> Literal["unlimited", "dataverse"] | dict[str, Decimal]:
        if isinstance(value, dict):
            for sku, quantity in value.items():
                if quantity < 0:
                    raise At(sku, "a quantity cannot be negative")
        return value

    def serves(self, country: str | None) -> bool:
        return not self.countries or (country or "").upper() in self.countries


class FulfillmentPolicy(_Strict):
    max_splits: int = Field(default=1, ge=1, le=20)
    when_unsourced: Literal["hold", "backorder"] = "hold"
    backorder_source: str | None = None
    sources: tuple[Source, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> FulfillmentPolicy:
        names = [s.name for s in self.sources]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise At(("sources", index, "name"), f"{name!r} appears twice")
        if self.when_unsourced == "backorder":
            if self.backorder_source is None:
                raise At("backorder_source", "required when when_unsourced is backorder")
            if self.backorder_source not in names:
                raise At("backorder_source", f"{self.backorder_source!r} is not a source")
        return self

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)


class StatusPolicy(_Strict):
    # Statuses in which an order is ready to be validated and sourced (when the mapping's status
    # rule holds nothing): Awaiting Pickup, Awaiting Shipment, Awaiting Fulfillment.
    ready: tuple[int, ...] = (8, 9, 11)
    on_hold: int = Field(default=12, ge=0, le=14)
    released: int = Field(default=11, ge=0, le=14)
    completed: int | None = Field(default=10, ge=0, le=14)
    cancelled: int = Field(default=5, ge=0, le=14)


class RetryPolicy(_Strict):
    max_attempts: int = Field(default=8, ge=0, le=50)
    base_seconds: float = Field(default=2.0, gt=0)
    max_seconds: float = Field(default=600.0, gt=0)


class FlowConfig(_Strict):
    version: Literal[1]
    name: str = Field(min_length=1)
    steps: tuple[StepConfig, ...] = Field(min_length=1)
    validation: ValidationPolicy = ValidationPolicy()
    fulfillment: FulfillmentPolicy
    bigcommerce_status: StatusPolicy = StatusPolicy()
    close_salesorders: bool = True
    retry: RetryPolicy = RetryPolicy()

    @model_validator(mode="after")
    def _ordered(self) -> FlowConfig:
        position: dict[StepName, int] = {}
        for index, configured in enumerate(self.steps):
            if configured.step in position:
                raise At(("steps", index, "step"), f"{configured.step} appears twice")
            position[configured.step] = index
        for name, earlier in _AFTER.items():
            for needed in earlier:
                if name in position and needed in position and position[needed] > position[name]:
                    raise At(("steps", position[name], "step"), f"{name} must come after {needed}")
        return self

    def steps_for(self, trigger: Trigger) -> tuple[StepName, ...]:
        return tuple(s.step for s in self.steps if trigger in s.triggers)


def _country_codes(value: tuple[str, ...]) -> tuple[str, ...]:
    codes = tuple(v.strip().upper() for v in value)
    for index, code in enumerate(codes):
        if len(code) != 2 or not code.isalpha():
            raise At(index, f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return codes


def flow_file(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    value = (env.get(FLOW_FILE_SETTING) or "").strip()
    return Path(value) if value else DEFAULT_FLOW_FILE


def load_flow(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> FlowConfig:
    """Reads and validates the flow, or raises FlowConfigError with one line."""
    source = Path(path) if path is not None else flow_file(environ)
    return parse_flow(read_document(source, "flow", FlowConfigError, setting=FLOW_FILE_SETTING))


def parse_flow(raw: object) -> FlowConfig:
    if not isinstance(raw, Mapping):
        raise FlowConfigError(
            f"invalid flow: the file must hold keys (version, steps, …), not a {type(raw).__name__}"
        )
    try:
        return FlowConfig.model_validate(raw)
    except ValidationError as exc:
        raise FlowConfigError(one_line("flow", exc.errors()[0])) from None
