"""Orders V3 JSON (`orders.v3.yml`): transactions, refund quotes, refunds and metafields.

Money is a JSON number rounded to cents, dates are ISO 8601, bodies are `{data, meta}`.
"""

from __future__ import annotations

import math
from typing import Any

from local.bigcommerce.model import Metafield, Order, Refund, RefundLine, Transaction
from local.bigcommerce.money import v3
from local.bigcommerce.refunds import PaymentOption, Quote
from local.bigcommerce.timefmt import iso8601

Json = dict[str, Any]


def pagination(total: int, count: int, page: int, limit: int) -> Json:
    pages = max(1, math.ceil(total / limit)) if limit else 1
    links: Json = {"current": f"?page={page}&limit={limit}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={limit}"
    if page < pages:
        links["next"] = f"?page={page + 1}&limit={limit}"
    return {
        "total": total,
        "count": count,
        "per_page": limit,
        "current_page": page,
        "total_pages": pages,
        "links": links,
    }


def transaction_json(order: Order, t: Transaction) -> Json:
    body: Json = {
        "id": t.id,
        "order_id": str(order.id),
        "event": t.event,
        "method": t.method,
        "amount": v3(t.amount),
        "currency": t.currency,
        "gateway": t.gateway,
        "gateway_transaction_id": t.gateway_transaction_id,
        "date_created": iso8601(t.date_created),
        "test": t.test,
        "status": t.status,
        "fraud_review": t.fraud_review,
        "offline": t.offline,
        "custom": t.custom,
        "payment_method_id": t.payment_method_id,
        "payment_instrument_token": None,
        "avs_result": {"code": "", "message": "", "street_match": "", "postal_match": ""},
        "cvv_result": {"code": "", "message": ""},
        "credit_card": t.credit_card or {},
        "gift_certificate": None,
        "store_credit": None,
        "custom_provider_field_result": None,
    }
    if t.reference_transaction_id is not None:
        body["reference_transaction_id"] = t.reference_transaction_id
    return body


def _option(option: PaymentOption) -> Json:
    return {
        "provider_id": option.provider_id,
        "provider_description": option.description,
        "amount": v3(option.amount),
        "offline": option.offline,
        "offline_provider": option.offline_provider,
        "offline_reason": option.offline_reason,
    }


def quote_json(quote: Quote) -> Json:
    return {
        "order_id": quote.order_id,
        "total_refund_amount": v3(quote.total),
        "total_refund_tax_amount": v3(quote.tax),
        "order_level_refund_amount": v3(quote.order_level),
        "rounding": float(quote.rounding),
        "adjustment": v3(quote.adjustment),
        "tax_inclusive": quote.tax_inclusive,
        "refund_methods": [[_option(o) for o in method] for method in quote.methods],
    }


def _item(line: RefundLine, *, requested_as_string: bool) -> Json:
    body: Json = {"item_type": line.item_type, "item_id": line.item_id, "reason": line.reason}
    if line.quantity is not None:
        body["quantity"] = line.quantity
    if requested_as_string:  # RefundID_Get: a string, null for quantity-bound items
        body["requested_amount"] = (
            None if line.requested_amount is None else f"{v3(line.requested_amount):.2f}"
        )
    else:  # Refund: an `Amount` number; quantity-bound items report what they refunded
        body["requested_amount"] = v3(
            line.requested_amount if line.requested_amount is not None else line.amount
        )
    return body


def refund_json(refund: Refund, *, single: bool = False) -> Json:
    payments = []
    for p in refund.payments:
        payment: Json = {
            "id": p.id,
            "provider_id": p.provider_id,
            "amount": v3(p.amount),
            "offline": p.offline,
            "is_declined": False,
            "declined_message": "",
        }
        if not single:
            payment["transaction_id"] = p.transaction_id
        payments.append(payment)
    return {
        "id": refund.id,
        "order_id": refund.order_id,
        "user_id": 0,
        "created": iso8601(refund.created),
        "reason": refund.reason,
        "total_amount": v3(refund.total_amount),
        "total_tax": v3(refund.total_tax),
        "uses_merchant_override_values": refund.uses_merchant_override_values,
        "items": [_item(i, requested_as_string=single) for i in refund.items],
        "payments": payments,
    }


def metafield_json(m: Metafield) -> Json:
    return {
        "id": m.id,
        "key": m.key,
        "value": m.value,
        "namespace": m.namespace,
        "permission_set": m.permission_set,
        "resource_type": "order",
        "resource_id": m.order_id,
        "description": m.description,
        "date_created": iso8601(m.date_created),
        "date_modified": iso8601(m.date_modified),
        "owner_client_id": m.owner_client_id,
    }
