"""The mapping from BigCommerce orders to Dataverse rows: its configuration file and functions.

- `config`: the versioned mapping file (`default_mapping.yaml`, or `CONNECTOR_MAPPING_FILE`),
  validated at start-up with one-line errors naming the key path;
- `keys`: key values Dataverse can address (reversible escaping) and the customer key;
- `rows`: the plain rows and references one intake writes;
- `order`: `map_order_intake`, a pure function from a BigCommerce order to those rows.
"""

from shared.mapping.config import (
    DEFAULT_MAPPING_FILE,
    MAPPING_FILE_SETTING,
    MappingConfig,
    MappingConfigError,
    load_mapping,
    parse_mapping,
)
from shared.mapping.keys import (
    customer_key,
    escape_key_value,
    is_key_safe,
    parse_customer_key,
    unescape_key_value,
)
from shared.mapping.order import MappingError, OrderIntake, SalesOrderState, map_order_intake
from shared.mapping.rows import Reference, Row

__all__ = [
    "DEFAULT_MAPPING_FILE",
    "MAPPING_FILE_SETTING",
    "MappingConfig",
    "MappingConfigError",
    "MappingError",
    "OrderIntake",
    "Reference",
    "Row",
    "SalesOrderState",
    "customer_key",
    "escape_key_value",
    "is_key_safe",
    "load_mapping",
    "map_order_intake",
    "parse_customer_key",
    "parse_mapping",
    "unescape_key_value",
]
