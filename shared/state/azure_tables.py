"""The state port over Azure Table Storage, with the `azure-data-tables` SDK (aio).

One entity per (partition, key): PartitionKey and RowKey are the partition and the key, and the
value is JSON in one string property, `value`. The ETag is the service's. Writes that name an
ETag are conditional (`If-Match`), so a writer that lost a race gets `ConcurrencyError`.

Access is identity-based (`STATE_TABLE_ENDPOINT` with the Function's managed identity, which
needs Storage Table Data Contributor) or, for Azurite and development, a connection string
(`STATE_CONNECTION_STRING`). The table is created on first use if it is missing.

Concurrency: the SDK's aio client holds an aiohttp session, which belongs to the event loop
that created it. The store creates its one `TableClient` lazily inside that loop (never at
import) and keeps it for the process; `close()` releases it and its credential.

The rules on keys and sizes are Table Storage's; the embedded SQLite store (local/state) applies
the same ones through `check_key` and `encode_value`, so what works locally works in Azure.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline import PipelineResponse
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient

from shared.config import Settings
from shared.state.ports import ConcurrencyError, Entity, StateError

VALUE_PROPERTY: Final = "value"
# A Table Storage string property holds at most 64 KiB of UTF-16; the JSON value is one.
MAX_VALUE_BYTES: Final = 64 * 1024
# PartitionKey and RowKey: at most 1 KiB of UTF-16 each.
MAX_KEY_BYTES: Final = 1024
_FORBIDDEN_KEY_CHARACTERS: Final = frozenset("/\\#?")
_RETRIES: Final = 3


def check_key(name: str, key: str) -> str:
    """A PartitionKey or RowKey Table Storage accepts, or ValueError naming what is wrong."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"the state {name} must be a non-empty string")
    for char in key:
        if char in _FORBIDDEN_KEY_CHARACTERS:
            raise ValueError(f"the state {name} must not contain {char!r}: {key!r}")
        if unicodedata.category(char) == "Cc":
            raise ValueError(f"the state {name} must not contain control characters: {key!r}")
    if len(key.encode("utf-16-le")) > MAX_KEY_BYTES:
        raise ValueError(f"the state {name} is longer than {MAX_KEY_BYTES} bytes (UTF-16)")
    return key


def encode_value(partition: str, key: str, value: Mapping[str, Any]) -> str:
    """The value as compact JSON; ValueError if it is not JSON, StateError if it is too big."""
    if not isinstance(value, Mapping):
        raise ValueError("a state value is a mapping")
    try:
        text = json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the state value of {partition}/{key} is not JSON: {exc}") from None
    size = len(text.encode("utf-16-le"))
    if size > MAX_VALUE_BYTES:
        raise StateError(
            f"the state value of {partition}/{key} is {size} bytes, more than the "
            f"{MAX_VALUE_BYTES} a Table Storage property holds"
        )
    return text


def decode_value(partition: str, key: str, text: object) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StateError(f"the state entity {partition}/{key} holds no JSON object")
    return value


def _failure(operation: str, exc: AzureError) -> StateError:
    """One safe line: the operation, the error class, and the status and code when known."""
    parts = [type(exc).__name__]
    if isinstance(exc, HttpResponseError):
        if exc.status_code is not None:
            parts.append(f"status {exc.status_code}")
        code = getattr(exc, "error_code", None)
        if code:
            parts.append(str(code))
    return StateError(f"Table Storage {operation} failed ({', '.join(parts)})")


class AzureTableStateStore:
    """`StateStore` over one table. Build it with `from_settings` (or the two constructors)."""

    def __init__(
        self,
        *,
        table_name: str,
        endpoint: str | None = None,
        credential: AsyncTokenCredential | None = None,
        connection_string: str | None = None,
        retries: int = _RETRIES,
    ) -> None:
        if (connection_string is None) == (endpoint is None):
            raise ValueError("give either a table endpoint or a connection string")
        self.table_name = table_name
        self._endpoint = endpoint
        self._credential = credential
        self._connection_string = connection_string
        self._retries = retries
        self._client: TableClient | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        where = self._endpoint or "connection string"
        return f"AzureTableStateStore(table={self.table_name!r}, at={where!r})"

    @classmethod
    def from_connection_string(
        cls, connection_string: str, table_name: str, *, retries: int = _RETRIES
    ) -> AzureTableStateStore:
        return cls(table_name=table_name, connection_string=connection_string, retries=retries)

    @classmethod
    def from_endpoint(
        cls, endpoint: str, table_name: str, credential: AsyncTokenCredential
    ) -> AzureTableStateStore:
        return cls(table_name=table_name, endpoint=endpoint, credential=credential)

    @classmethod
    def from_settings(cls, settings: Settings) -> AzureTableStateStore:
        """STATE_CONNECTION_STRING when set, else STATE_TABLE_ENDPOINT with the identity: the
        user-assigned managed identity of AZURE_CLIENT_ID, else DefaultAzureCredential (as the
        Dataverse client does). Creating the credential makes no request."""
        if settings.state_connection_string is not None:
            return cls.from_connection_string(
                settings.state_connection_string.get_secret_value(), settings.state_table_name
            )
        if settings.state_table_endpoint is None:
            raise ValueError("STATE_TABLE_ENDPOINT or STATE_CONNECTION_STRING is required")
        from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

        credential: AsyncTokenCredential
        if settings.managed_identity_client_id:
            credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
        else:
            credential = DefaultAzureCredential()
        return cls.from_endpoint(
            settings.state_table_endpoint, settings.state_table_name, credential
        )

    # -- the client ---------------------------------------------------------------------------

    async def _table(self) -> TableClient:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                client = self._new_client()
                try:
                    await client.create_table()
                except ResourceExistsError:
                    pass
                except AzureError as exc:
                    await client.close()
                    raise _failure("create table", exc) from None
                self._client = client
        return self._client

    def _new_client(self) -> TableClient:
        options: dict[str, Any] = {"retry_total": self._retries}
        if self._connection_string is not None:
            try:
                return TableClient.from_connection_string(
                    self._connection_string, self.table_name, **options
                )
            except ValueError:  # its message may quote the string, which holds the key
                raise StateError(
                    "STATE_CONNECTION_STRING is not a Table Storage connection string"
                ) from None
        if self._endpoint is None or self._credential is None:
            raise StateError("the state store is closed")
        try:
            return TableClient(
                self._endpoint, self.table_name, credential=self._credential, **options
            )
        except ValueError as exc:
            raise StateError(f"STATE_TABLE_ENDPOINT is not usable: {exc}") from None

    async def close(self) -> None:
        client, credential = self._client, self._credential
        self._client = None
        if client is not None:
            await client.close()
        if credential is not None:
            self._credential = None
            await credential.close()

    # -- the port -----------------------------------------------------------------------------

    @staticmethod
    def _entity(partition: str, key: str, text: str) -> dict[str, str]:
        return {"PartitionKey": partition, "RowKey": key, VALUE_PROPERTY: text}

    @staticmethod
    def _written(
        partition: str, key: str, value: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> Entity:
        etag = meta.get("etag")
        if not isinstance(etag, str):
            raise StateError("Table Storage answered a write without an ETag")
        return Entity(partition, key, dict(value), etag)

    def _read(self, entity: TableEntity) -> Entity:
        partition, key = str(entity["PartitionKey"]), str(entity["RowKey"])
        return Entity(
            partition,
            key,
            decode_value(partition, key, entity.get(VALUE_PROPERTY)),
            str(entity.metadata["etag"]),
        )

    async def table_exists(self) -> bool:
        """Whether the table exists, found by one read that creates nothing (unlike every
        other call, which creates the table first): for the operator's doctor. Raises
        StateError when Table Storage cannot be read (unreachable, refused credentials, no
        Storage Table Data Reader/Contributor role)."""
        client = self._new_client()
        try:
            await client.get_entity("doctor", "probe")
        except ResourceNotFoundError as exc:
            # Both a missing row and a missing table are 404s; the error code tells them apart.
            return getattr(exc, "error_code", None) != "TableNotFound"
        except AzureError as exc:
            raise _failure("read", exc) from None
        finally:
            await client.close()
        return True

    async def get(self, partition: str, key: str) -> Entity | None:
        check_key("partition", partition)
        check_key("key", key)
        table = await self._table()
        try:
            found = await table.get_entity(partition, key)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise _failure("get", exc) from None
        return self._read(found)

    async def list(self, partition: str) -> list[Entity]:
        check_key("partition", partition)
        table = await self._table()
        try:
            pages = table.query_entities(
                "PartitionKey eq @partition", parameters={"partition": partition}
            )
            return [self._read(found) async for found in pages]
        except AzureError as exc:
            raise _failure("query", exc) from None

    async def create(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        check_key("partition", partition)
        check_key("key", key)
        text = encode_value(partition, key, value)
        table = await self._table()
        try:
            meta = await table.create_entity(self._entity(partition, key, text))
        except ResourceExistsError:
            raise ConcurrencyError(f"the state entity {partition}/{key} exists") from None
        except AzureError as exc:
            raise _failure("create", exc) from None
        return self._written(partition, key, value, meta)

    async def replace(self, entity: Entity, value: Mapping[str, Any]) -> Entity:
        partition, key = check_key("partition", entity.partition), check_key("key", entity.key)
        text = encode_value(partition, key, value)
        table = await self._table()
        try:
            meta = await table.update_entity(
                self._entity(partition, key, text),
                mode=UpdateMode.REPLACE,
                etag=entity.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrencyError(
                f"the state entity {partition}/{key} changed since it was read"
            ) from None
        except AzureError as exc:
            raise _failure("replace", exc) from None
        return self._written(partition, key, value, meta)

    async def upsert(self, partition: str, key: str, value: Mapping[str, Any]) -> Entity:
        check_key("partition", partition)
        check_key("key", key)
        text = encode_value(partition, key, value)
        table = await self._table()
        try:
            meta = await table.upsert_entity(
                self._entity(partition, key, text), mode=UpdateMode.REPLACE
            )
        except AzureError as exc:
            raise _failure("upsert", exc) from None
        return self._written(partition, key, value, meta)

    async def delete(self, entity: Entity) -> None:
        partition, key = check_key("partition", entity.partition), check_key("key", entity.key)
        table = await self._table()
        statuses: list[int] = []

        def record(response: PipelineResponse[Any, Any]) -> None:
            statuses.append(response.http_response.status_code)

        try:
            # The SDK treats 404 as success; the hook sees it, and a vanished entity is a
            # concurrency failure like a changed one.
            await table.delete_entity(
                partition,
                key,
                etag=entity.etag,
                match_condition=MatchConditions.IfNotModified,
                raw_response_hook=record,
            )
        except ResourceModifiedError:
            raise ConcurrencyError(
                f"the state entity {partition}/{key} changed since it was read"
            ) from None
        except AzureError as exc:
            raise _failure("delete", exc) from None
        if statuses and statuses[-1] == 404:
            raise ConcurrencyError(f"the state entity {partition}/{key} is already gone")
