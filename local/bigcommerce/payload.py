"""Reading fields out of request bodies and query strings, failing as the API does (400/422)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from local.bigcommerce.errors import ApiError
from local.bigcommerce.money import parse_amount


class Fields:
    """A request object's fields; each getter raises `ApiError(status)` naming a bad field."""

    def __init__(self, raw: object, where: str = "", status: int = 400) -> None:
        if not isinstance(raw, dict):
            raise ApiError(status, f"{where or 'The request body'} must be a JSON object.")
        self.raw: dict[str, Any] = raw
        self.where = where
        self.status = status

    def __contains__(self, name: str) -> bool:
        return name in self.raw

    def _name(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def invalid(self, name: str, why: str = "is invalid") -> ApiError:
        return ApiError(self.status, f"The field '{self._name(name)}' {why}.")

    def required(self, name: str) -> ApiError:
        return ApiError(self.status, f"The required field '{self._name(name)}' was not supplied.")

    def integer(
        self, name: str, default: int | None = None, *, minimum: int | None = None
    ) -> int | None:
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            raise self.invalid(name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or (minimum is not None and value < minimum):
            raise self.invalid(name)
        return value

    def need_integer(self, name: str, *, minimum: int | None = None) -> int:
        value = self.integer(name, minimum=minimum)
        if value is None:
            raise self.required(name)
        return value

    def amount(self, name: str) -> Decimal | None:
        if self.raw.get(name) is None:
            return None
        value = parse_amount(self.raw[name])
        if value is None:
            raise self.invalid(name, "must be a non-negative number")
        return value

    def amount_pair(self, ex_name: str, inc_name: str) -> tuple[Decimal, Decimal] | None:
        ex, inc = self.amount(ex_name), self.amount(inc_name)
        if ex is None and inc is None:
            return None
        if ex is None or inc is None:
            missing = ex_name if ex is None else inc_name
            given = inc_name if ex is None else ex_name
            raise ApiError(
                self.status,
                f"The field '{self._name(missing)}' is required when '{given}' is supplied.",
            )
        if inc < ex:
            raise self.invalid(inc_name, f"cannot be less than '{ex_name}'")
        return ex, inc

    def text(
        self, name: str, default: str | None = None, *, max_length: int | None = None
    ) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.invalid(name, "must be a string")
        if max_length is not None and len(value) > max_length:
            raise self.invalid(name, f"must be at most {max_length} characters long")
        return value

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self.raw.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.invalid(name, "must be a boolean")
        return value

    def objects(self, name: str) -> list[Fields] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.invalid(name, "must be an array")
        return [
            Fields(item, f"{self._name(name)}[{i}]", self.status) for i, item in enumerate(value)
        ]


def query_int(
    params: Mapping[str, str], name: str, default: int | None = None, *, minimum: int = 0
) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(float(raw)) if "." in raw else int(raw)
    except ValueError:
        raise ApiError(400, f"The filter '{name}' is invalid.") from None
    if value < minimum:
        raise ApiError(400, f"The filter '{name}' is invalid.")
    return value


def query_bool(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise ApiError(400, f"The filter '{name}' is invalid.")
