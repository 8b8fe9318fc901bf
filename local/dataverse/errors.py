"""Errors in the documented Web API shape: `{"error": {"code": "<hex>", "message": "..."}}`.

Codes and messages come from the Dataverse error-code list (reference/web-service-error-codes)
and the Web API articles that show them (compose-http-requests-handle-errors,
perform-conditional-operations-using-web-api, execute-batch-operations-using-web-api,
use-alternate-key-reference-record, api-limits). Where the docs show an empty `code` the live
service fills in the hex code; the stand-in always does.
"""

from __future__ import annotations

import json
from typing import Final

# Documented codes (name: hex).
OBJECT_DOES_NOT_EXIST: Final = "0x80040217"  # ObjectDoesNotExist
DUPLICATE_RECORD: Final = "0x80040237"  # DuplicateRecord
DUPLICATE_RECORD_ENTITY_KEY: Final = "0x80060892"  # DuplicateRecordEntityKey
CONCURRENCY_VERSION_MISMATCH: Final = "0x80060882"  # ConcurrencyVersionMismatch
ENTITY_KEY_NOT_DEFINED: Final = "0x80060890"  # EntityKeyNotDefined
KEY_VALUES_NOT_FOUND: Final = "0x80060891"  # no record with the key values (bind by key)
ENTITY_KEY_NAME_EXISTS: Final = "0x80060893"  # EntityKeyNameExists
ENTITY_KEY_SAME_ATTRIBUTES: Final = "0x80060894"  # EntityKeyWithSelectedAttributesExists
VALIDATION: Final = "0x80044331"  # attribute validation (length) as in the $batch article
NOT_AUTHENTICATED: Final = "0x80040220"
REQUESTS_LIMIT: Final = "0x80072322"
EXECUTION_TIME_LIMIT: Final = "0x80072321"
CONCURRENCY_LIMIT: Final = "0x80072326"
# Codes the live service returns for OData-level problems (seen in public captures, not listed
# with these messages in the docs): malformed queries and payloads, unknown segments.
ODATA_ERROR: Final = "0x80060888"
RESOURCE_NOT_FOUND: Final = "0x8006088a"
INVALID_ARGUMENT: Final = "0x80040203"
UNEXPECTED: Final = "0x80040216"


class DataverseError(Exception):
    """An error answered with its HTTP status and the documented JSON body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> bytes:
        return json.dumps({"error": {"code": self.code, "message": self.message}}).encode()


def bad_request(message: str, code: str = ODATA_ERROR) -> DataverseError:
    return DataverseError(400, code, message)


def not_found(entity: str, record_id: str) -> DataverseError:
    """As in perform-conditional-operations: `account With Id = <guid> Does Not Exist`."""
    return DataverseError(
        404, OBJECT_DOES_NOT_EXIST, f"{entity} With Id = {record_id} Does Not Exist"
    )


def no_segment(segment: str) -> DataverseError:
    return DataverseError(
        404, RESOURCE_NOT_FOUND, f"Resource not found for the segment '{segment}'."
    )


def unknown_property(name: str, entity: str) -> DataverseError:
    return bad_request(
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{entity}'."
    )


def invalid_key(entity: str) -> DataverseError:
    """The documented message for a URL key that is not a usable key (use-alternate-key...)."""
    resource = f"Microsoft.Dynamics.CRM.{entity}"
    return bad_request(
        f"The key in the request URI is not valid for resource '{resource}'. Ensure that the names "
        f"and number of key properties match the declared or alternate key properties for the "
        f"resource '{resource}'."
    )
