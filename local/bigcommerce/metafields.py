"""Order metafields (`/v3/orders/{id}/metafields`): create, read, update, delete.

`namespace` + `key` is unique per order and API account (409 on a duplicate); `permission_set`,
`namespace`, `key` and `value` are required, with the lengths `MetafieldBase_Post` gives (422).
"""

from __future__ import annotations

from datetime import datetime

from local.bigcommerce import changes
from local.bigcommerce.errors import ApiError
from local.bigcommerce.events import StoreEvent
from local.bigcommerce.model import Metafield
from local.bigcommerce.payload import Fields
from local.bigcommerce.state import Store

PERMISSION_SETS = ("app_only", "read", "write", "read_and_sf_access", "write_and_sf_access")
_LIMITS = {"namespace": (1, 64), "key": (1, 64), "value": (1, 65535), "description": (0, 255)}


def _check(body: Fields, *, partial: bool) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in ("permission_set", "namespace", "key", "value", "description"):
        value = body.text(name)
        if value is None:
            if not partial and name != "description":
                raise ApiError(422, f"The field '{name}' is required.", errors={name: "required"})
            continue
        low, high = _LIMITS.get(name, (1, 64))
        if name == "permission_set" and value not in PERMISSION_SETS:
            raise ApiError(422, "The field 'permission_set' is invalid.", errors={name: value})
        if not low <= len(value) <= high:
            raise ApiError(
                422,
                f"The field '{name}' must be {low} to {high} characters long.",
                errors={name: "length"},
            )
        values[name] = value
    return values


def _conflict(store: Store, order_id: int, namespace: str, key: str, skip: int = 0) -> None:
    for other in store.metafields.values():
        if (
            other.order_id == order_id
            and other.id != skip
            and (other.namespace, other.key) == (namespace, key)
        ):
            raise ApiError(
                409,
                f"A metafield with namespace '{namespace}' and key '{key}' already exists on "
                f"order {order_id}.",
            )


def create(
    store: Store, order_id: int, body_raw: object, now: datetime, events: list[StoreEvent]
) -> Metafield:
    values = _check(Fields(body_raw, status=422), partial=False)
    _conflict(store, order_id, values["namespace"], values["key"])
    metafield = Metafield(
        id=store.next_id("metafield"),
        order_id=order_id,
        namespace=values["namespace"],
        key=values["key"],
        value=values["value"],
        permission_set=values["permission_set"],
        description=values.get("description", ""),
        date_created=now,
        date_modified=now,
        owner_client_id=store.client_id,
    )
    store.metafields[metafield.id] = metafield
    events.append(changes.metafield_event(store.hash, order_id, metafield.id, "created"))
    return metafield


def update(
    store: Store, metafield: Metafield, body_raw: object, now: datetime, events: list[StoreEvent]
) -> None:
    values = _check(Fields(body_raw, status=422), partial=True)
    namespace = values.get("namespace", metafield.namespace)
    key = values.get("key", metafield.key)
    _conflict(store, metafield.order_id, namespace, key, skip=metafield.id)
    for name, value in values.items():
        setattr(metafield, name, value)
    metafield.date_modified = now
    events.append(changes.metafield_event(store.hash, metafield.order_id, metafield.id, "updated"))


def delete(store: Store, metafield: Metafield, events: list[StoreEvent]) -> None:
    del store.metafields[metafield.id]
    events.append(changes.metafield_event(store.hash, metafield.order_id, metafield.id, "deleted"))
