"""Orders V2 JSON, field for field as `orders.v2.oas2.yml` describes the responses.

Money is a string with four decimals, dates are RFC 2822, sub-resources are `{url, resource}`
links unless `include` embeds them (`consignments`, `consignments.line_items`, `fees`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from local.bigcommerce.model import ADDRESS_FIELDS, Address, Order, OrderAddress, OrderProduct
from local.bigcommerce.money import ZERO, v2
from local.bigcommerce.orders import CURRENCIES
from local.bigcommerce.pricing import line_discount_inc, totals
from local.bigcommerce.shipments import generated_tracking_link, provider_display_name
from local.bigcommerce.statuses import STATUSES, OrderStatus
from local.bigcommerce.timefmt import rfc2822

Json = dict[str, Any]


def link(base: str, resource: str) -> Json:
    return {"url": f"{base}{resource}", "resource": resource}


def address_json(address: Address, *, form_fields: bool = True) -> Json:
    body: Json = {name: getattr(address, name) for name in ADDRESS_FIELDS}
    if form_fields:
        body["form_fields"] = [dict(f) for f in address.form_fields]
    return body


def order_json(
    order: Order,
    base: str,
    *,
    consignments: bool = False,
    line_items: bool = False,
    fees: bool = False,
) -> Json:
    t = totals(order)
    status = STATUSES[order.status_id]
    currency_id = CURRENCIES.get(order.currency_code, (1, Decimal(1)))[0]
    inclusive = order.is_tax_inclusive_pricing
    prefix = f"/orders/{order.id}"
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "date_created": rfc2822(order.date_created),
        "date_modified": rfc2822(order.date_modified),
        "date_shipped": rfc2822(order.date_shipped),
        "status_id": order.status_id,
        "status": status.name,
        "subtotal_ex_tax": v2(t.subtotal_ex),
        "subtotal_inc_tax": v2(t.subtotal_inc),
        "subtotal_tax": v2(t.subtotal_inc - t.subtotal_ex),
        "base_shipping_cost": v2(t.shipping_inc if inclusive else t.shipping_ex),
        "shipping_cost_ex_tax": v2(t.shipping_ex),
        "shipping_cost_inc_tax": v2(t.shipping_inc),
        "shipping_cost_tax": v2(t.shipping_inc - t.shipping_ex),
        "shipping_cost_tax_class_id": 2,
        "base_handling_cost": v2(t.handling_inc if inclusive else t.handling_ex),
        "handling_cost_ex_tax": v2(t.handling_ex),
        "handling_cost_inc_tax": v2(t.handling_inc),
        "handling_cost_tax": v2(t.handling_inc - t.handling_ex),
        "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": v2(t.wrapping_inc if inclusive else t.wrapping_ex),
        "wrapping_cost_ex_tax": v2(t.wrapping_ex),
        "wrapping_cost_inc_tax": v2(t.wrapping_inc),
        "wrapping_cost_tax": v2(t.wrapping_inc - t.wrapping_ex),
        "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": v2(t.total_ex),
        "total_inc_tax": v2(t.total_inc),
        "total_tax": v2(t.total_tax),
        "is_tax_inclusive_pricing": inclusive,
        "items_total": order.items_total,
        "items_shipped": order.items_shipped,
        "payment_method": order.payment_method,
        "payment_provider_id": order.payment_provider_id,
        "payment_status": order.payment_status,
        "refunded_amount": v2(ZERO),  # "always returns 0" (spec); refunds are in V3
        "order_is_digital": order.is_digital,
        "store_credit_amount": v2(order.store_credit_amount),
        "gift_certificate_amount": v2(order.gift_certificate_amount),
        "ip_address": order.ip_address,
        "ip_address_v6": order.ip_address_v6,
        "geoip_country": order.geoip_country,
        "geoip_country_iso2": order.geoip_country_iso2,
        "currency_id": currency_id,
        "currency_code": order.currency_code,
        "currency_exchange_rate": "1.0000000000",
        "default_currency_id": currency_id,
        "default_currency_code": order.currency_code,
        "store_default_currency_code": order.store_currency_code,
        "store_default_to_transactional_exchange_rate": f"{order.exchange_rate:.10f}",
        "staff_notes": order.staff_notes,
        "customer_message": order.customer_message,
        "discount_amount": v2(t.discount_amount),
        "coupon_discount": v2(t.coupon_discount),
        "shipping_address_count": len(order.addresses),
        "is_deleted": order.is_deleted,
        "ebay_order_id": order.ebay_order_id,
        "cart_id": order.cart_id,
        "billing_address": address_json(order.billing_address),
        "is_email_opt_in": order.is_email_opt_in,
        "credit_card_type": order.credit_card_type,
        "order_source": order.order_source,
        "channel_id": order.channel_id,
        "external_source": order.external_source,
        "consignments": (
            consignments_json(order, base, line_items=line_items)
            if consignments
            else link(base, f"{prefix}/consignments")
        ),
        "products": link(base, f"{prefix}/products"),
        "shipping_addresses": link(base, f"{prefix}/shipping_addresses"),
        "coupons": link(base, f"{prefix}/coupons"),
        "external_id": order.external_id,
        "external_merchant_id": order.external_merchant_id,
        "tax_provider_id": order.tax_provider_id,
        "custom_status": status.name,
        "customer_locale": order.customer_locale,
        "external_order_id": order.external_order_id,
        "fees": fees_json(order) if fees else link(base, f"{prefix}/fees"),
    }


def product_json(order: Order, line: OrderProduct) -> Json:
    inclusive = order.is_tax_inclusive_pricing
    discount_inc = line_discount_inc(order, line)
    size = "0.0000" if line.type != "physical" else "1.0000"
    return {
        "id": line.id,
        "order_id": order.id,
        "product_id": line.product_id,
        "variant_id": line.variant_id,
        "order_pickup_method_id": 0,
        "order_address_id": line.order_address_id,
        "name": line.name,
        "name_customer": line.name,
        "name_merchant": line.name_merchant,
        "sku": line.sku,
        "upc": line.upc,
        "type": line.type,
        "base_price": v2(line.price_inc_tax if inclusive else line.price_ex_tax),
        "price_ex_tax": v2(line.price_ex_tax),
        "price_inc_tax": v2(line.price_inc_tax),
        "price_tax": v2(line.price_tax),
        "base_total": v2(line.total_inc_tax if inclusive else line.total_ex_tax),
        "total_ex_tax": v2(line.total_ex_tax),
        "total_inc_tax": v2(line.total_inc_tax),
        "total_tax": v2(line.total_inc_tax - line.total_ex_tax),
        "weight": v2(line.weight),
        "width": size,
        "height": size,
        "depth": size,
        "quantity": line.quantity,
        "base_cost_price": v2(line.base_cost_price),
        "cost_price_inc_tax": v2(line.base_cost_price),
        "cost_price_ex_tax": v2(line.base_cost_price),
        "cost_price_tax": v2(ZERO),
        "is_refunded": line.quantity_refunded >= line.quantity,
        "quantity_refunded": line.quantity_refunded,
        "refund_amount": v2(ZERO),  # deprecated, "always returns 0"
        "return_id": 0,
        "wrapping_id": line.wrapping_id,
        "wrapping_name": line.wrapping_name,
        "base_wrapping_cost": v2(line.wrapping_inc_tax if inclusive else line.wrapping_ex_tax),
        "wrapping_cost_ex_tax": v2(line.wrapping_ex_tax),
        "wrapping_cost_inc_tax": v2(line.wrapping_inc_tax),
        "wrapping_cost_tax": v2(line.wrapping_inc_tax - line.wrapping_ex_tax),
        "wrapping_message": line.wrapping_message,
        "quantity_shipped": line.quantity_shipped,
        "event_name": None,
        "event_date": None,
        "fixed_shipping_cost": v2(line.fixed_shipping_cost),
        "ebay_item_id": "",
        "ebay_transaction_id": "",
        "option_set_id": 1 if line.options else None,
        "parent_order_product_id": None,
        "is_bundled_product": False,
        "bin_picking_number": line.bin_picking_number,
        "external_id": None,
        "brand": line.brand,
        "applied_discounts": [
            {
                "id": d.id,
                "amount": v2(d.amount),
                "name": d.name,
                "code": d.code,
                "target": d.target,
            }
            for d in line.discounts
        ],
        "product_options": [
            {
                "id": o.id,
                "option_id": o.option_id,
                "order_product_id": line.id,
                "product_option_id": o.product_option_id,
                "display_name": o.display_name,
                "display_name_customer": o.display_name,
                "display_name_merchant": o.name or o.display_name,
                "display_value": o.display_value,
                "display_value_customer": o.display_value,
                "display_value_merchant": o.display_value,
                "value": o.value,
                "type": o.type,
                "name": o.name or o.display_name,
                "display_style": o.display_style,
            }
            for o in line.options
        ],
        "configurable_fields": [],
        "gift_certificate_id": None,
        "discounted_total_inc_tax": v2(line.total_inc_tax - discount_inc),
    }


def _address_items(order: Order, address: OrderAddress) -> tuple[int, int]:
    lines = [p for p in order.products if p.order_address_id == address.id]
    return sum(p.quantity for p in lines), sum(p.quantity_shipped for p in lines)


def _costs(order: Order, address: OrderAddress, as_number: bool) -> Json:
    def shown(value: Decimal) -> Any:
        return float(value) if as_number else v2(value)

    inclusive = order.is_tax_inclusive_pricing
    return {
        "base_cost": shown(address.cost_inc_tax if inclusive else address.cost_ex_tax),
        "cost_ex_tax": shown(address.cost_ex_tax),
        "cost_inc_tax": shown(address.cost_inc_tax),
        "cost_tax": shown(address.cost_inc_tax - address.cost_ex_tax),
        "cost_tax_class_id": 2,
        "base_handling_cost": shown(
            address.handling_inc_tax if inclusive else address.handling_ex_tax
        ),
        "handling_cost_ex_tax": shown(address.handling_ex_tax),
        "handling_cost_inc_tax": shown(address.handling_inc_tax),
        "handling_cost_tax": shown(address.handling_inc_tax - address.handling_ex_tax),
        "handling_cost_tax_class_id": 2,
        "shipping_zone_id": address.shipping_zone_id,
        "shipping_zone_name": address.shipping_zone_name,
    }


def shipping_address_json(order: Order, address: OrderAddress, base: str) -> Json:
    items_total, items_shipped = _address_items(order, address)
    prefix = f"/orders/{order.id}/shipping_addresses/{address.id}/shipping_quotes"
    return {
        "id": address.id,
        "order_id": order.id,
        **address_json(address.address),
        "items_total": items_total,
        "items_shipped": items_shipped,
        "shipping_method": address.shipping_method,
        **_costs(order, address, as_number=False),
        "shipping_quotes": link(base, prefix),
    }


def consignments_json(order: Order, base: str, *, line_items: bool) -> Json:
    def lines(chosen: list[OrderProduct]) -> list[Json]:
        if line_items:
            return [product_json(order, p) for p in chosen]
        return [link(base, f"/orders/{order.id}/products/{p.id}") for p in chosen]

    shipping = []
    for address in order.addresses:
        items_total, items_shipped = _address_items(order, address)
        shipping.append(
            {
                "id": address.id,
                **address_json(address.address),
                "line_items": lines(
                    [p for p in order.products if p.order_address_id == address.id]
                ),
                "items_total": items_total,
                "items_shipped": items_shipped,
                "shipping_method": address.shipping_method,
                **_costs(order, address, as_number=True),
                "shipping_quotes": link(
                    base, f"/orders/{order.id}/consignments/shipping/{address.id}/shipping_quotes"
                ),
            }
        )
    digital = [p for p in order.products if p.type == "digital"]
    gift_certificates = [p for p in order.products if p.type == "giftcertificate"]
    email = order.billing_address.email
    return {
        "pickups": [],
        "shipping": shipping,
        "downloads": [{"recipient_email": email, "line_items": lines(digital)}] if digital else [],
        "email": {
            "gift_certificates": (
                [{"recipient_email": email, "line_items": lines(gift_certificates)}]
                if gift_certificates
                else []
            )
        },
    }


def fees_json(order: Order) -> list[Json]:
    inclusive = order.is_tax_inclusive_pricing
    return [
        {
            "id": f.id,
            "type": f.type,
            "display_name_customer": f.display_name_customer,
            "display_name_merchant": f.display_name_merchant,
            "source": f.source,
            "base_cost": v2(f.cost_inc_tax if inclusive else f.cost_ex_tax),
            "cost_ex_tax": v2(f.cost_ex_tax),
            "cost_inc_tax": v2(f.cost_inc_tax),
            "cost_tax": v2(f.cost_inc_tax - f.cost_ex_tax),
            "tax_class_id": f.tax_class_id,
        }
        for f in order.fees
    ]


def coupons_json(order: Order) -> list[Json]:
    return [
        {
            "id": c.id,
            "coupon_id": c.coupon_id,
            "order_id": order.id,
            "code": c.code,
            "amount": float(c.amount),
            "type": c.type,
            "discount": float(c.discount),
        }
        for c in order.coupons
    ]


def taxes_json(order: Order, *, details: bool) -> list[Json]:
    """Per line (`details=true`) or per order address, as the Get All Order Taxes examples."""
    rate = f"{order.tax_rate:.4f}"
    rows: list[tuple[int, Decimal, str | None, str]] = []  # (address id, amount, line id, type)
    for line in order.products:
        tax = line.total_inc_tax - line.total_ex_tax
        if tax:
            rows.append((line.order_address_id, tax, str(line.id), "item"))
    for address in order.addresses:
        if address.cost_inc_tax - address.cost_ex_tax:
            rows.append((address.id, address.cost_inc_tax - address.cost_ex_tax, None, "shipping"))
        if address.handling_inc_tax - address.handling_ex_tax:
            rows.append(
                (address.id, address.handling_inc_tax - address.handling_ex_tax, None, "handling")
            )
    if not details:
        merged: dict[int, Decimal] = {}
        for address_id, amount, _, _ in rows:
            merged[address_id] = merged.get(address_id, ZERO) + amount
        rows = [(a, amount, None, "") for a, amount in merged.items()]
    out = []
    for index, (address_id, amount, line_id, kind) in enumerate(rows, start=1):
        row: Json = {
            "id": order.id * 1000 + index,
            "order_id": order.id,
            "order_address_id": address_id,
            "tax_rate_id": 1,
            "sales_tax_id": "TaxId1",
            "tax_class_id": 0,
            "name": "Tax",
            "class": order.tax_class_name,
            "rate": rate,
            "priority": 0,
            "priority_amount": v2(amount),
            "line_amount": v2(amount),
            "order_pickup_method_id": 0,
        }
        if details:
            row["line_item_type"] = kind
            if line_id is not None:
                row["order_product_id"] = line_id
        out.append(row)
    return out


def shipment_json(order: Order, shipment_id: int) -> Json:
    shipment = order.shipments[shipment_id]
    address = order.address(shipment.order_address_id)
    return {
        "id": shipment.id,
        "order_id": order.id,
        "customer_id": order.customer_id,
        "order_address_id": shipment.order_address_id,
        "date_created": rfc2822(shipment.date_created),
        "tracking_number": shipment.tracking_number,
        "merchant_shipping_cost": v2(shipment.merchant_shipping_cost),
        "shipping_method": shipment.shipping_method,
        "comments": shipment.comments,
        "shipping_provider": shipment.shipping_provider,
        "tracking_carrier": shipment.tracking_carrier,
        "tracking_link": shipment.tracking_link,
        "billing_address": address_json(order.billing_address, form_fields=False),
        "shipping_address": address_json(address.address, form_fields=False)
        if address
        else address_json(Address(), form_fields=False),
        "items": [
            {
                "order_product_id": i.order_product_id,
                "product_id": i.product_id,
                "quantity": i.quantity,
            }
            for i in shipment.items
        ],
        "shipping_provider_display_name": provider_display_name(shipment.shipping_provider),
        "generated_tracking_link": generated_tracking_link(shipment),
    }


def status_json(status: OrderStatus) -> Json:
    return {
        "id": status.id,
        "name": status.name,
        "system_label": status.name,
        "custom_label": status.name,
        "system_description": status.description,
        "order": status.sort_order,
    }


def count_json(orders: list[Order]) -> Json:
    counts = {status_id: 0 for status_id in STATUSES}
    for order in orders:
        counts[order.status_id] += 1
    statuses = sorted(STATUSES.values(), key=lambda s: s.sort_order)
    return {
        "statuses": [
            {
                "id": s.id,
                "name": s.name,
                "system_label": s.name,
                "custom_label": s.name,
                "system_description": s.description,
                "count": counts[s.id],
                "sort_order": s.sort_order,
            }
            for s in statuses
        ],
        "count": len(orders),
    }
