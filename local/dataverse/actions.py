"""The unbound sales order actions: `POST FulfillSalesOrder` and `POST CancelSalesOrder`.

Dataverse does not close a salesorder through an update of its state; it takes these actions,
each with an `OrderClose` entity (the close activity, bound to the order by
`salesorderid@odata.bind`) and a `Status` (the order's new status reason). Sources:
- MicrosoftDocs/dynamics-365-customer-engagement, the Web API `salesorder` EntityType reference,
  "Actions": CancelSalesOrder and FulfillSalesOrder are "Not Bound";
- the Web API action references (learn.microsoft.com, mt607784 FulfillSalesOrder, mt607587
  CancelSalesOrder): parameters `OrderClose` (orderclose, not nullable) and `Status` (Edm.Int32,
  not nullable); neither returns a value (204);
- CancelSalesOrderRequest.Status: -1 lets the system pick the status that goes with the state.

States (the salesorder entity reference): Fulfilled is statecode 3 with statuscode 100001
(Complete) or 100002 (Partial); Canceled is statecode 2 with statuscode 4 (No Money). An order
that is already closed (Canceled, Fulfilled or Invoiced) is refused with a 400; the stand-in does
not keep the orderclose activity itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from local.dataverse import errors
from local.dataverse.messages import ApiRequest, ApiResponse, no_content
from local.dataverse.store import Store
from local.dataverse.writes import Writer

SALESORDER: Final = "salesorder"
CLOSED_STATES: Final = {2: "canceled", 3: "fulfilled", 4: "invoiced"}


@dataclass(frozen=True, slots=True)
class CloseAction:
    statecode: int
    statuses: tuple[int, ...]  # allowed Status values; the first is the default (-1)
    verb: str


ACTIONS: Final = {
    "FulfillSalesOrder": CloseAction(3, (100001, 100002), "fulfilled"),
    "CancelSalesOrder": CloseAction(2, (4,), "canceled"),
}


def _parameter_missing(action: str, name: str) -> errors.DataverseError:
    return errors.bad_request(
        f"Parameter '{name}' of action '{action}' is required and cannot be null.",
        errors.INVALID_ARGUMENT,
    )


def run(store: Store, request: ApiRequest, action: str) -> ApiResponse:
    spec = ACTIONS[action]
    body: Any = request.json()
    if not isinstance(body, dict):
        raise errors.bad_request("The request body must be a JSON object.")
    close = body.get("OrderClose")
    if not isinstance(close, dict):
        raise _parameter_missing(action, "OrderClose")
    status = body.get("Status")
    if isinstance(status, bool) or not isinstance(status, int):
        raise _parameter_missing(action, "Status")
    if status == -1:
        status = spec.statuses[0]
    if status not in spec.statuses:
        raise errors.bad_request(
            f"{status} is not a valid status code for state code {spec.statecode} of "
            f"salesorder (allowed: {', '.join(map(str, spec.statuses))}).",
            errors.INVALID_ARGUMENT,
        )
    bind = close.get("salesorderid@odata.bind")
    if bind is None:
        raise errors.bad_request(
            f"The OrderClose of {action} must name the order: salesorderid@odata.bind.",
            errors.INVALID_ARGUMENT,
        )
    writer = Writer(store, request.content_ids)
    entity, record_id = writer.reference(bind, (SALESORDER,))
    row = store.fetch(entity, record_id)
    assert row is not None
    closed = CLOSED_STATES.get(int(row.get("statecode") or 0))
    if closed is not None:
        raise errors.bad_request(
            f"The sales order {record_id} is already {closed} (statecode "
            f"{row.get('statecode')}), so it cannot be {spec.verb}.",
            errors.INVALID_ARGUMENT,
        )
    writer.update(entity, record_id, {"statecode": spec.statecode, "statuscode": status})
    return no_content()
