"""The mapping configuration: how BigCommerce orders become Dataverse rows, as a versioned file.

The file is YAML (JSON is YAML too) with a `version`; `default_mapping.yaml` beside this module
ships with the app and documents every key. `CONNECTOR_MAPPING_FILE` names another file. It is
read and validated once at start-up; a bad file fails with one line naming the exact key path,
e.g. `invalid mapping: status_map.11.statuscode: 3 is not a status reason of statecode 0 (...)`.

What it holds:
- `status_map`: every BigCommerce status id (0-14; map by id, never by label) -> whether the order
  is taken in, the salesorder `statecode`/`statuscode` it stands for, and an optional `hold`
  reason. A held order is written with `bciom_holdreason` set (IOM flows filter it out until the
  hold is cleared); a status without `hold` clears it.
- `payment_methods`: BigCommerce `payment_method` (case-insensitive) -> an optional hold reason.
- `shipping_methods`: BigCommerce shipping method (case-insensitive) -> salesorder
  `shippingmethodcode` option value, with a default.
- `customers`: whose account an order is for, the default account, the guest fallback e-mail.
- `price_list` (+ `price_lists_by_currency`), `currencies` (BigCommerce currency code ->
  transactioncurrency ISO code), `unit`, `products` (SKU -> product number overrides, and what
  to do with a line without a SKU), `order_name`.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.config.documents import At as _At
from shared.config.documents import one_line, read_document
from shared.config.errors import ConfigurationError
from shared.dataverse.schema import ACCOUNT, PREFIX, SALESORDER
from shared.mapping.keys import escape_key_value

MAPPING_FILE_SETTING: Final = "CONNECTOR_MAPPING_FILE"
DEFAULT_MAPPING_FILE: Final = Path(__file__).with_name("default_mapping.yaml")
MAPPING_VERSION: Final = 1

BIGCOMMERCE_STATUS_IDS: Final = range(
    15
)  # /v2/order_statuses: 0 Incomplete … 14 Partially Refunded
# salesorder statecode -> its statuscodes (the standard salesorder table; iom.md §3.2):
# 0 Active: 1 New, 2 Pending; 1 Submitted: 3 In Progress; 2 Canceled: 4 No Money;
# 3 Fulfilled: 100001 Complete, 100002 Partial; 4 Invoiced: 100003 Invoiced.
SALESORDER_STATUS_REASONS: Final[Mapping[int, tuple[int, ...]]] = {
    0: (1, 2),
    1: (3,),
    2: (4,),
    3: (100001, 100002),
    4: (100003,),
}
STATECODE_ACTIVE: Final = 0
HOLD_REASON_MAX_LENGTH: Final = SALESORDER.column(PREFIX + "holdreason").max_length or 0
_ORDER_NAME_MAX_LENGTH: Final = SALESORDER.column(SALESORDER.primary_name).max_length or 0
_COMPANY_KEY_MAX_LENGTH: Final = ACCOUNT.column(PREFIX + "companykey").max_length or 0
_ORDER_NAME_FIELDS: Final = frozenset({"order_id", "store_hash"})
_ISO_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")


class MappingConfigError(ConfigurationError):
    """A mapping file that cannot be used; the message is one line naming the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hold(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        raise _At("hold", "must not be empty (leave it out for no hold)")
    if len(text) > HOLD_REASON_MAX_LENGTH:
        raise _At("hold", f"longer than {HOLD_REASON_MAX_LENGTH} characters")
    return text


class StatusRule(_Strict):
    """What a BigCommerce status means for the sales order."""

    label: str = ""  # BigCommerce's system label, for whoever reads the file
    intake: bool = True  # False: orders in this status are not written (e.g. Incomplete)
    statecode: int | None = None
    statuscode: int | None = None
    hold: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StatusRule:
        if not self.intake:
            for name in ("statecode", "statuscode", "hold"):
                if getattr(self, name) is not None:
                    raise _At(name, "not used when intake is false")
            return self
        if self.statecode is None:
            raise _At("statecode", "required when intake is true")
        if self.statecode not in SALESORDER_STATUS_REASONS:
            states = ", ".join(str(s) for s in SALESORDER_STATUS_REASONS)
            raise _At("statecode", f"{self.statecode} is not a salesorder state ({states})")
        reasons = SALESORDER_STATUS_REASONS[self.statecode]
        if self.statuscode is None:
            raise _At("statuscode", "required when intake is true")
        if self.statuscode not in reasons:
            allowed = ", ".join(str(r) for r in reasons)
            raise _At(
                "statuscode",
                f"{self.statuscode} is not a status reason of statecode {self.statecode} "
                f"(allowed: {allowed})",
            )
        object.__setattr__(self, "hold", _hold(self.hold))
        if self.hold is not None and self.statecode != STATECODE_ACTIVE:
            raise _At("hold", f"only an active order (statecode {STATECODE_ACTIVE}) is held")
        return self


class PaymentRule(_Strict):
    hold: str | None = None

    @model_validator(mode="after")
    def _valid_hold(self) -> PaymentRule:
        object.__setattr__(self, "hold", _hold(self.hold))
        return self


def _casefold_keys(value: Mapping[str, Any]) -> None:
    seen: dict[str, str] = {}
    for key in value:
        folded = key.strip().casefold()
        if not folded:
            raise _At(key, "an empty name matches nothing")
        if folded in seen:
            raise _At(key, f"same name as {seen[folded]!r} (names are case-insensitive)")
        seen[folded] = key


class ShippingMethods(_Strict):
    """BigCommerce shipping method -> salesorder `shippingmethodcode` option value."""

    default: int | None = Field(default=None, ge=1)
    map: dict[str, int] = Field(default_factory=dict)

    @field_validator("map")
    @classmethod
    def _names(cls, value: dict[str, int]) -> dict[str, int]:
        _casefold_keys(value)
        for name, code in value.items():
            if code < 1:
                raise _At(name, f"{code} is not an option value (1 or more)")
        return value

    def code(self, method: str | None) -> int | None:
        folded = (method or "").strip().casefold()
        for name, code in self.map.items():
            if name.strip().casefold() == folded:
                return code
        return self.default


class Customers(_Strict):
    # contact: the order's customer is the buyer's contact; account: the default account below.
    order_customer: Literal["contact", "account"] = "contact"
    default_account_key: str = "bigcommerce"
    default_account_name: str = "BigCommerce"
    # A guest order without an e-mail address lands on the contact of this address.
    anonymous_email: str = "anonymous@bigcommerce.invalid"

    @field_validator("default_account_key")
    @classmethod
    def _account_key(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(escape_key_value(value)) > _COMPANY_KEY_MAX_LENGTH:
            raise ValueError(f"longer than {_COMPANY_KEY_MAX_LENGTH} characters once escaped")
        return value

    @field_validator("anonymous_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if "@" not in value.strip(" @"):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value.strip()


class Products(_Strict):
    # BigCommerce SKU -> Dataverse product number, where they differ (otherwise the SKU is used).
    sku_map: dict[str, str] = Field(default_factory=dict)
    # A line without a SKU: reject the order, or write the line in by name (no product lookup).
    without_sku: Literal["reject", "write_in"] = "reject"

    @field_validator("sku_map")
    @classmethod
    def _numbers(cls, value: dict[str, str]) -> dict[str, str]:
        for sku, number in value.items():
            if not number.strip():
                raise _At(sku, "the product number must not be empty")
        return value

    def product_number(self, sku: str) -> str:
        return self.sku_map.get(sku, sku)


class MappingConfig(_Strict):
    version: int
    order_name: str = "BC-{order_id}"
    status_map: dict[int, StatusRule]
    payment_methods: dict[str, PaymentRule] = Field(default_factory=dict)
    shipping_methods: ShippingMethods = Field(default_factory=ShippingMethods)
    customers: Customers = Field(default_factory=Customers)
    price_list: str = Field(min_length=1)
    price_lists_by_currency: dict[str, str] = Field(default_factory=dict)
    currencies: dict[str, str] = Field(min_length=1)
    unit: str = Field(min_length=1)
    products: Products = Field(default_factory=Products)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != MAPPING_VERSION:
            raise ValueError(f"unsupported version {value} (this build reads {MAPPING_VERSION})")
        return value

    @field_validator("order_name")
    @classmethod
    def _order_name(cls, value: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        unknown = fields - _ORDER_NAME_FIELDS
        if unknown:
            allowed = ", ".join("{" + f + "}" for f in sorted(_ORDER_NAME_FIELDS))
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}} (allowed: {allowed})")
        if "order_id" not in fields:
            raise ValueError("must contain {order_id}")
        example = value.format(order_id=2**31 - 1, store_hash="x" * 32)
        if len(example) > _ORDER_NAME_MAX_LENGTH:
            raise ValueError(f"can be longer than {_ORDER_NAME_MAX_LENGTH} characters")
        return value

    @field_validator("status_map")
    @classmethod
    def _every_status(cls, value: dict[int, StatusRule]) -> dict[int, StatusRule]:
        for status_id in value:
            if status_id not in BIGCOMMERCE_STATUS_IDS:
                raise _At(status_id, "not a BigCommerce status id (0-14)")
        missing = [str(s) for s in BIGCOMMERCE_STATUS_IDS if s not in value]
        if missing:
            raise ValueError(
                f"missing BigCommerce status id(s) {', '.join(missing)}: every status 0-14 needs "
                "a rule (intake: false to ignore one)"
            )
        return value

    @field_validator("payment_methods")
    @classmethod
    def _payment_names(cls, value: dict[str, PaymentRule]) -> dict[str, PaymentRule]:
        _casefold_keys(value)
        return value

    @field_validator("currencies")
    @classmethod
    def _currency_codes(cls, value: dict[str, str]) -> dict[str, str]:
        for code, iso in value.items():
            if not _ISO_CURRENCY.match(code):
                raise _At(code, "not an ISO 4217 code (three capital letters)")
            if not _ISO_CURRENCY.match(iso):
                raise _At(code, f"{iso!r} is not an ISO 4217 code (three capital letters)")
        return value

    @model_validator(mode="after")
    def _price_list_currencies(self) -> MappingConfig:
        for code, name in self.price_lists_by_currency.items():
            if code not in self.currencies:
                raise _At(("price_lists_by_currency", code), "not one of the currencies")
            if not name.strip():
                raise _At(("price_lists_by_currency", code), "must not be empty")
        return self

    def status(self, status_id: int) -> StatusRule | None:
        return self.status_map.get(status_id)

    def payment_hold(self, method: str | None) -> str | None:
        folded = (method or "").strip().casefold()
        for name, rule in self.payment_methods.items():
            if name.strip().casefold() == folded:
                return rule.hold
        return None

    def price_list_for(self, iso_code: str) -> str:
        return self.price_lists_by_currency.get(iso_code, self.price_list)


# -- loading ------------------------------------------------------------------------------------


def mapping_file(environ: Mapping[str, str] | None = None) -> Path:
    """`CONNECTOR_MAPPING_FILE` when set, else the default file shipped with the app."""
    value = (os.environ if environ is None else environ).get(MAPPING_FILE_SETTING, "").strip()
    return Path(value) if value else DEFAULT_MAPPING_FILE


def load_mapping(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> MappingConfig:
    """Reads and validates the mapping, or raises MappingConfigError with one line."""
    source = Path(path) if path is not None else mapping_file(environ)
    raw = read_document(source, "mapping", MappingConfigError, setting=MAPPING_FILE_SETTING)
    return parse_mapping(raw)


def parse_mapping(raw: object) -> MappingConfig:
    """Validates an already-parsed mapping document."""
    if not isinstance(raw, Mapping):
        raise MappingConfigError(
            "invalid mapping: the file must hold keys (version, status_map, …), "
            f"not a {type(raw).__name__}"
        )
    try:
        return MappingConfig.model_validate(raw)
    except ValidationError as exc:
        raise MappingConfigError(one_line("mapping", exc.errors()[0])) from None
