"""The simulated store's catalog: what `product_id` means in Create an Order, and what the
generator sells. It includes the product ids the Orders V2 spec's examples use (77, 86, 118,
184, 188), so those examples work as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class CatalogProduct:
    id: int
    name: str
    sku: str
    price: Decimal  # the catalog price, entered excluding tax
    type: str = "physical"  # physical | digital
    weight: Decimal = Decimal("1")
    brand: str = "BigCommerce"
    cost: Decimal = Decimal("0")
    variants: tuple[tuple[int, str, str], ...] = ()  # (variant id, option name, option value)

    @property
    def default_variant(self) -> int:
        return self.variants[0][0] if self.variants else 0


def _p(
    pid: int,
    name: str,
    sku: str,
    price: str,
    kind: str = "physical",
    weight: str = "1",
    **kw: object,
) -> CatalogProduct:
    variants = kw.get("variants", ())
    assert isinstance(variants, tuple)
    return CatalogProduct(
        pid,
        name,
        sku,
        Decimal(price),
        kind,
        Decimal(weight),
        str(kw.get("brand", "BigCommerce")),
        (Decimal(price) * Decimal("0.45")).quantize(Decimal("0.01")),
        variants,
    )


CATALOG: dict[int, CatalogProduct] = {
    p.id: p
    for p in (
        _p(77, "Fog Linen Chambray Towel - Beige Stripe", "S-ORAN", "49.00", brand="Fog Linen"),
        _p(86, "Able Brewing System", "ABS", "225.00", weight="4", brand="Able"),
        _p(88, "Chemex Coffeemaker 3 Cup", "CC3C", "49.50", weight="2", brand="Chemex"),
        _p(93, "Oak Cheese Grater", "OCG", "34.95", weight="1.5", brand="OFS"),
        _p(97, "Tiered Wire Basket", "TWB", "119.95", weight="3", brand="OFS"),
        _p(103, "Canvas Laundry Cart", "CLC", "200.00", weight="8", brand="Common Good"),
        _p(104, "Laundry Detergent", "CGLD", "29.00", weight="2", brand="Common Good"),
        _p(107, "Dustpan & Brush", "DPB", "34.95", brand="OFS"),
        _p(111, "Smith Journal 13", "SM13", "25.00", weight="0.5", brand="Smith Journal"),
        _p(112, "Utility Caddy", "OFSUC", "45.95", weight="2", brand="OFS"),
        _p(
            118,
            "Orbit Terrarium - Large",
            "OTL",
            "109.00",
            weight="3",
            brand="Terra",
            variants=((93, "Size", "Large"), (94, "Size", "Small")),
        ),
        _p(
            184,
            "Organic Cotton T-Shirt",
            "TSH-ORG",
            "28.00",
            weight="0.3",
            brand="Threads",
            variants=((421, "Size", "S"), (422, "Size", "M"), (423, "Size", "L")),
        ),
        _p(188, "Dustpan & Brush Set", "DUST1", "31.95", weight="2", brand="OFS"),
        _p(201, "Merino Wool Beanie", "BEANIE-MER", "32.00", weight="0.2", brand="Threads"),
        _p(
            202,
            "Trail Running Shoe",
            "SHOE-TRL",
            "129.00",
            weight="1.1",
            brand="Stride",
            variants=((511, "Size", "42"), (512, "Size", "43"), (513, "Size", "44")),
        ),
        _p(203, "Insulated Water Bottle", "BTL-INS", "24.50", weight="0.6", brand="Hydra"),
        _p(301, "Pour-Over Brewing Guide (e-book)", "EBOOK-POUR", "12.00", "digital", "0"),
        _p(302, "Espresso Masterclass (video course)", "COURSE-ESP", "79.00", "digital", "0"),
        _p(303, "Store Planner Template Pack", "TPL-PLAN", "9.00", "digital", "0", brand="Studio"),
    )
}
