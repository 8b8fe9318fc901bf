"""The Dataverse tables and columns the connector writes, declared once.

Provisioning (the operator CLI) creates what is missing from this declaration, the Web API
stand-in serves its entity sets from it, and the mapping writes only columns named here. Standard
tables (salesorder, salesorderdetail, contact, account, product, pricelevel, uom) and IOM's
fulfillment tables are not created, only extended with our columns and alternate keys; our own
tables are created whole: the order journal, refunds and their lines (BigCommerce refunds have no
standard Dataverse home), inventory levels (what a `dataverse` fulfillment source has on hand) and
sync state (checkpoints such as change-tracking delta links).

Every write is an upsert by an alternate key, so redelivered messages are harmless:
- customer (contact): store + customer key (the BigCommerce customer id, or a guest's lower-cased
  e-mail, built by shared.mapping.keys.customer_key), so a guest's repeat orders land on one
  contact;
- salesorder: store + BigCommerce order id;
- salesorderdetail: store + BigCommerce order product id;
- fulfillment order: store + fulfillment key ("<order id>-<n>"); its lines: store + line key;
- refund: store + BigCommerce refund id; its lines: store + "<refund id>-<item type>-<item id>";
- journal entry: its message id;
- inventory level: source + SKU; sync state: its name.
Key values must avoid the characters Dataverse cannot address by key (/ < > * % & : \\ ? +), so
whoever builds a key value (the mapping) escapes them; e-mail addresses are the usual case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

PREFIX: Final = "bciom_"

ColumnKind = Literal[
    "string",
    "memo",
    "integer",
    "bigint",
    "decimal",
    "money",
    "datetime",
    "boolean",
    "lookup",
    "uniqueidentifier",
]


@dataclass(frozen=True, slots=True)
class Column:
    logical_name: str
    kind: ColumnKind
    ours: bool = True  # a column this connector provisions (False: standard, only referenced)
    max_length: int | None = None  # string and memo columns
    target: str | None = None  # lookup columns: the referenced table's logical name
    label: str = ""

    def __post_init__(self) -> None:
        if self.ours and not self.logical_name.startswith(PREFIX):
            raise ValueError(f"{self.logical_name}: our columns carry the {PREFIX} prefix")
        if self.kind in ("string", "memo") and self.max_length is None:
            raise ValueError(f"{self.logical_name}: text columns need max_length")
        if (self.kind == "lookup") != (self.target is not None):
            raise ValueError(f"{self.logical_name}: lookups, and only lookups, have a target")


@dataclass(frozen=True, slots=True)
class AlternateKey:
    logical_name: str
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.columns) <= 16:
            raise ValueError(f"{self.logical_name}: a key has 1 to 16 columns")


@dataclass(frozen=True, slots=True)
class Table:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    ours: bool = False  # a table this connector creates (False: it exists; we extend it)
    required: bool = True  # False: IOM tables used only where IOM is installed
    columns: tuple[Column, ...] = ()
    keys: tuple[AlternateKey, ...] = ()
    # Collection navigation properties used for deep insert and $expand, by name.
    collections: dict[str, str] = field(default_factory=dict)

    def column(self, logical_name: str) -> Column:
        for column in self.columns:
            if column.logical_name == logical_name:
                return column
        raise KeyError(f"{self.logical_name} has no column {logical_name}")

    def __post_init__(self) -> None:
        if len(self.keys) > 10:
            raise ValueError(f"{self.logical_name}: at most 10 alternate keys per table")
        names = {c.logical_name for c in self.columns}
        for key in self.keys:
            missing = set(key.columns) - names
            if missing:
                raise ValueError(f"key {key.logical_name} names undeclared columns {missing}")


def _ours(name: str, kind: ColumnKind, **options: object) -> Column:
    return Column(PREFIX + name, kind, **options)  # type: ignore[arg-type]


STORE_HASH = _ours("storehash", "string", max_length=32, label="BigCommerce store hash")

CONTACT: Final = Table(
    logical_name="contact",
    entity_set="contacts",
    primary_id="contactid",
    primary_name="fullname",
    columns=(
        Column("firstname", "string", ours=False, max_length=50),
        Column("lastname", "string", ours=False, max_length=50),
        Column("emailaddress1", "string", ours=False, max_length=100),
        Column("telephone1", "string", ours=False, max_length=50),
        STORE_HASH,
        _ours("customerkey", "string", max_length=120, label="BigCommerce customer key"),
        _ours("bccustomerid", "integer", label="BigCommerce customer id (0 for guests)"),
    ),
    keys=(
        AlternateKey(
            PREFIX + "contact_customer", (STORE_HASH.logical_name, PREFIX + "customerkey")
        ),
    ),
)

ACCOUNT: Final = Table(
    logical_name="account",
    entity_set="accounts",
    primary_id="accountid",
    primary_name="name",
    columns=(
        Column("name", "string", ours=False, max_length=160),
        STORE_HASH,
        _ours("companykey", "string", max_length=200, label="BigCommerce company key"),
    ),
    keys=(
        AlternateKey(PREFIX + "account_company", (STORE_HASH.logical_name, PREFIX + "companykey")),
    ),
)

SALESORDER: Final = Table(
    logical_name="salesorder",
    entity_set="salesorders",
    primary_id="salesorderid",
    primary_name="name",
    columns=(
        Column("name", "string", ours=False, max_length=300),
        Column("customerid", "lookup", ours=False, target="contact"),
        Column("pricelevelid", "lookup", ours=False, target="pricelevel"),
        Column("transactioncurrencyid", "lookup", ours=False, target="transactioncurrency"),
        Column("totalamount", "money", ours=False),
        Column("statecode", "integer", ours=False),
        Column("statuscode", "integer", ours=False),
        STORE_HASH,
        _ours("bcorderid", "integer", label="BigCommerce order id"),
        _ours("bcstatusid", "integer", label="BigCommerce status id"),
        _ours("bcdatemodified", "datetime", label="BigCommerce date modified"),
        _ours("channelid", "integer", label="BigCommerce channel id"),
        _ours("holdreason", "memo", max_length=4000, label="Why the order is on hold"),
        # shared.orchestration.records.Lifecycle values; null reads as "received".
        _ours("lifecycle", "string", max_length=30, label="Connector lifecycle"),
    ),
    keys=(
        AlternateKey(
            PREFIX + "salesorder_bcorder", (STORE_HASH.logical_name, PREFIX + "bcorderid")
        ),
    ),
    collections={"order_details": "salesorderdetail"},
)

SALESORDERDETAIL: Final = Table(
    logical_name="salesorderdetail",
    entity_set="salesorderdetails",
    primary_id="salesorderdetailid",
    primary_name="productdescription",
    columns=(
        Column("salesorderid", "lookup", ours=False, target="salesorder"),
        Column("productid", "lookup", ours=False, target="product"),
        Column("uomid", "lookup", ours=False, target="uom"),
        Column("productdescription", "string", ours=False, max_length=500),
        Column("quantity", "decimal", ours=False),
        Column("quantityshipped", "decimal", ours=False),
        Column("quantitycancelled", "decimal", ours=False),
        Column("priceperunit", "money", ours=False),
        Column("manualdiscountamount", "money", ours=False),
        Column("tax", "money", ours=False),
        Column("isproductoverridden", "boolean", ours=False),
        STORE_HASH,
        _ours("bcorderid", "integer", label="BigCommerce order id"),
        _ours("bcorderproductid", "integer", label="BigCommerce order product id"),
        _ours("sku", "string", max_length=255, label="BigCommerce SKU"),
    ),
    keys=(
        AlternateKey(
            PREFIX + "salesorderdetail_bcline",
            (STORE_HASH.logical_name, PREFIX + "bcorderproductid"),
        ),
    ),
)

PRODUCT: Final = Table(
    logical_name="product",
    entity_set="products",
    primary_id="productid",
    primary_name="name",
    columns=(
        Column("name", "string", ours=False, max_length=100),
        Column("productnumber", "string", ours=False, max_length=100),
        Column("defaultuomid", "lookup", ours=False, target="uom"),
    ),
    keys=(AlternateKey(PREFIX + "product_number", ("productnumber",)),),
)

PRICELEVEL: Final = Table(
    logical_name="pricelevel",
    entity_set="pricelevels",
    primary_id="pricelevelid",
    primary_name="name",
    columns=(Column("name", "string", ours=False, max_length=100),),
)

UOM: Final = Table(
    logical_name="uom",
    entity_set="uoms",
    primary_id="uomid",
    primary_name="name",
    columns=(Column("name", "string", ours=False, max_length=100),),
)

FULFILLMENT_ORDER: Final = Table(
    logical_name="msdyn_fulfillmentorder",
    entity_set="msdyn_fulfillmentorders",
    primary_id="msdyn_fulfillmentorderid",
    primary_name="msdyn_name",
    required=False,
    columns=(
        Column("msdyn_name", "string", ours=False, max_length=100),
        STORE_HASH,
        _ours("fulfillmentkey", "string", max_length=64, label="Fulfillment key (order-n)"),
        _ours("bcorderid", "integer", label="BigCommerce order id"),
        _ours("salesorder", "lookup", target="salesorder", label="Sales order"),
        _ours("source", "string", max_length=100, label="Fulfillment source"),
        _ours("trackingnumber", "string", max_length=50, label="Tracking number"),
        _ours("carrier", "string", max_length=100, label="Carrier"),
        _ours("shipped", "boolean", label="Shipped"),
        _ours("bcshipmentid", "integer", label="BigCommerce shipment id"),
        _ours("cancelled", "boolean", label="Cancelled"),
    ),
    keys=(
        AlternateKey(
            PREFIX + "fulfillmentorder_key", (STORE_HASH.logical_name, PREFIX + "fulfillmentkey")
        ),
    ),
    collections={"msdyn_fulfillmentorder_details": "msdyn_fulfillmentorderdetail"},
)

FULFILLMENT_ORDER_DETAIL: Final = Table(
    logical_name="msdyn_fulfillmentorderdetail",
    entity_set="msdyn_fulfillmentorderdetails",
    primary_id="msdyn_fulfillmentorderdetailid",
    primary_name="msdyn_name",
    required=False,
    columns=(
        Column("msdyn_name", "string", ours=False, max_length=100),
        Column("msdyn_fulfillmentid", "lookup", ours=False, target="msdyn_fulfillmentorder"),
        STORE_HASH,
        _ours("linekey", "string", max_length=80, label="Fulfillment line key"),
        _ours("bcorderproductid", "integer", label="BigCommerce order product id"),
        _ours("quantity", "decimal", label="Quantity"),
        _ours("quantityshipped", "decimal", label="Quantity shipped"),
    ),
    keys=(
        AlternateKey(
            PREFIX + "fulfillmentorderdetail_key", (STORE_HASH.logical_name, PREFIX + "linekey")
        ),
    ),
)

JOURNAL: Final = Table(
    logical_name=PREFIX + "orderjournal",
    entity_set=PREFIX + "orderjournals",
    primary_id=PREFIX + "orderjournalid",
    primary_name=PREFIX + "name",
    ours=True,
    columns=(
        _ours("name", "string", max_length=200, label="Entry"),
        _ours("messageid", "string", max_length=128, label="Message id"),
        STORE_HASH,
        _ours("bcorderid", "integer", label="BigCommerce order id"),
        _ours("salesorder", "lookup", target="salesorder", label="Sales order"),
        _ours("kind", "string", max_length=40, label="Kind (event, step, write)"),
        _ours("step", "string", max_length=60, label="Step"),
        _ours("outcome", "string", max_length=40, label="Outcome"),
        _ours("durationms", "integer", label="Duration (ms)"),
        _ours("correlationid", "string", max_length=64, label="Correlation id"),
        _ours("details", "memo", max_length=10000, label="Details"),
        _ours("occurredon", "datetime", label="Occurred on"),
    ),
    keys=(AlternateKey(PREFIX + "orderjournal_message", (PREFIX + "messageid",)),),
)

ORDER_REFUND: Final = Table(
    logical_name=PREFIX + "orderrefund",
    entity_set=PREFIX + "orderrefunds",
    primary_id=PREFIX + "orderrefundid",
    primary_name=PREFIX + "name",
    ours=True,
    columns=(
        _ours("name", "string", max_length=200, label="Refund"),
        STORE_HASH,
        _ours("refundid", "integer", label="BigCommerce refund id"),
        _ours("bcorderid", "integer", label="BigCommerce order id"),
        _ours("salesorder", "lookup", target="salesorder", label="Sales order"),
        _ours("totalamount", "money", label="Total amount"),
        _ours("totaltax", "money", label="Total tax"),
        _ours("reason", "memo", max_length=1000, label="Reason"),
        _ours("refundedon", "datetime", label="Refunded on"),
    ),
    keys=(
        AlternateKey(PREFIX + "orderrefund_refund", (STORE_HASH.logical_name, PREFIX + "refundid")),
    ),
)

ORDER_REFUND_LINE: Final = Table(
    logical_name=PREFIX + "orderrefundline",
    entity_set=PREFIX + "orderrefundlines",
    primary_id=PREFIX + "orderrefundlineid",
    primary_name=PREFIX + "name",
    ours=True,
    columns=(
        _ours("name", "string", max_length=200, label="Refund line"),
        STORE_HASH,
        _ours("refundlinekey", "string", max_length=80, label="Refund line key"),
        _ours("orderrefund", "lookup", target=PREFIX + "orderrefund", label="Refund"),
        # Set for PRODUCT items only: the other item types are not order lines.
        _ours("salesorderdetail", "lookup", target="salesorderdetail", label="Order line"),
        _ours("itemtype", "string", max_length=20, label="Item type"),
        _ours("itemid", "integer", label="Item id"),
        _ours("quantity", "decimal", label="Quantity"),
        _ours("amount", "money", label="Amount"),
    ),
    keys=(
        AlternateKey(
            PREFIX + "orderrefundline_key", (STORE_HASH.logical_name, PREFIX + "refundlinekey")
        ),
    ),
)

INVENTORY_LEVEL: Final = Table(
    logical_name=PREFIX + "inventorylevel",
    entity_set=PREFIX + "inventorylevels",
    primary_id=PREFIX + "inventorylevelid",
    primary_name=PREFIX + "name",
    ours=True,
    columns=(
        _ours("name", "string", max_length=400, label="Inventory level"),
        _ours("source", "string", max_length=100, label="Fulfillment source"),
        _ours("sku", "string", max_length=255, label="SKU"),
        _ours("available", "decimal", label="Available"),
    ),
    keys=(AlternateKey(PREFIX + "inventorylevel_sku", (PREFIX + "source", PREFIX + "sku")),),
)

SYNC_STATE: Final = Table(
    logical_name=PREFIX + "syncstate",
    entity_set=PREFIX + "syncstates",
    primary_id=PREFIX + "syncstateid",
    primary_name=PREFIX + "name",
    ours=True,
    columns=(
        _ours("name", "string", max_length=200, label="Name"),
        # 1,048,576 characters: the most a multiple-lines-of-text column holds.
        _ours("value", "memo", max_length=1_048_576, label="Value"),
    ),
    keys=(AlternateKey(PREFIX + "syncstate_name", (PREFIX + "name",)),),
)

SCHEMA: Final[tuple[Table, ...]] = (
    CONTACT,
    ACCOUNT,
    PRODUCT,
    PRICELEVEL,
    UOM,
    SALESORDER,
    SALESORDERDETAIL,
    FULFILLMENT_ORDER,
    FULFILLMENT_ORDER_DETAIL,
    JOURNAL,
    ORDER_REFUND,
    ORDER_REFUND_LINE,
    INVENTORY_LEVEL,
    SYNC_STATE,
)


def table(logical_name: str) -> Table:
    for candidate in SCHEMA:
        if candidate.logical_name == logical_name:
            return candidate
    raise KeyError(f"no table {logical_name} in the schema")


def by_entity_set(entity_set: str) -> Table:
    for candidate in SCHEMA:
        if candidate.entity_set == entity_set:
            return candidate
    raise KeyError(f"no entity set {entity_set} in the schema")
