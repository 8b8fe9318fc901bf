"""The Dataverse Web API client (OData v4, `/api/data/v9.2/`): writes, reads, paging, change
tracking and `$batch`, through one throttle gate per identity, with retries and typed errors.

One `httpx.AsyncClient` per process, which a `LoopClient` creates inside the running event loop
on the first request, and again on another loop (a CLI's second `asyncio.run`, a test). It
keeps no cookies: Dataverse's ARR affinity cookie would pin every request to one web server,
and service protection limits are counted per web server, so without it the load spreads
(send-parallel-requests.md). Every request carries the baseline headers of
compose-http-requests-handle-errors.md (`Accept: application/json`, `OData-MaxVersion` and
`OData-Version: 4.0`, `If-None-Match: null`); reads get DATAVERSE_TIMEOUT_SECONDS (60 s by
default), writes and `$batch` twice that: 120 s by default, the 2-minute limit of synchronous
plug-ins (optimize-performance-create-update.md).

The base URL is DATAVERSE_URL (`https://<org>.crm.dynamics.com`, or the local stand-in at
`http://127.0.0.1:<port>`), and the token comes from a `TokenProvider` per request. Links the
server hands out (`@odata.nextLink`, `@odata.deltaLink`) are followed unchanged, and only when
they point at the same origin, so the token is never sent anywhere else.

Writes are built for redelivery: `upsert` is a PATCH by alternate key, idempotent, retried after
any transient failure; `create` is a POST, retried only when Dataverse surely did not act on it
(see `retry.py`). `execute_batch` never raises for a failed operation: every operation comes back
with its outcome (see `batch.py`); items refused with 429, or with 502/503/504 when idempotent,
are sent again in a smaller batch after the wait, the rest are returned as they are.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from shared.config.settings import Settings
from shared.dataverse.auth import TokenProvider, azure_token_provider
from shared.dataverse.batch import (
    SERVICE_ROOT_PATH,
    BatchFormatError,
    BatchItem,
    BatchResult,
    ItemResult,
    Outcome,
    encode_batch,
    is_multipart,
    match_responses,
    parse_batch_response,
    validate_batch,
)
from shared.dataverse.errors import (
    DataverseError,
    NotFoundError,
    OutcomeUnknownError,
    ResponseFormatError,
    TransportError,
    error_for,
    retry_after_seconds,
    safe_path,
)
from shared.dataverse.gate import GatePolicy, ThrottleGate, shared_gate
from shared.dataverse.models import (
    Changes,
    ClientStats,
    Page,
    Retrieved,
    Row,
    RowKey,
    UpsertMode,
    WriteResult,
)
from shared.dataverse.odata import (
    check_name,
    entity_path,
    json_bytes,
    parse_entity_id,
    row_body,
    select_list,
    with_query,
)
from shared.dataverse.retry import (
    TRANSIENT_STATUSES,
    Action,
    Decision,
    Delivery,
    Random,
    RetryPolicy,
)
from shared.http.loop_client import LoopClient
from shared.version import VERSION

log = logging.getLogger("connector.dataverse")

_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_DELETED_SUFFIX: Final = "/$deletedEntity"
MAX_PAGE_SIZE: Final = 5000


@dataclass(frozen=True, slots=True)
class ClientOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # reads
    write_timeout: float = 120.0  # writes and $batch
    user_agent: str = f"bigcommerce-iom-connector/{VERSION}"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    gate: GatePolicy = field(default_factory=GatePolicy)
    service_root_path: str = SERVICE_ROOT_PATH

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.read_timeout, self.write_timeout) <= 0:
            raise ValueError("timeouts must be positive")
        if not self.service_root_path.startswith("/"):
            raise ValueError("service_root_path must start with /")

    @classmethod
    def from_settings(cls, settings: Settings, *, gate: GatePolicy | None = None) -> ClientOptions:
        """DATAVERSE_TIMEOUT_SECONDS for reads; writes and `$batch` get twice as long."""
        timeout = settings.dataverse_timeout_seconds
        return cls(read_timeout=timeout, write_timeout=2 * timeout, gate=gate or GatePolicy())


class DataverseClient:
    """Talks to one Dataverse environment's Web API as one identity."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        *,
        options: ClientOptions | None = None,
        gate: ThrottleGate | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: Random = random.random,
    ) -> None:
        self.options = options or ClientOptions()
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the Dataverse URL must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_url = self.base_url + self.options.service_root_path.rstrip("/") + "/"
        # Batch parts name their URLs from the host root: keep any path DATAVERSE_URL has.
        self._service_root = urlsplit(self.api_url).path.rstrip("/")
        self._origin = (parts.scheme, parts.netloc.lower())
        self._tokens = tokens
        self.gate = gate or ThrottleGate(self.options.gate)
        self.stats = ClientStats()
        self._transport = transport
        self._rng = rng
        self._http = LoopClient(self._new_client)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        tokens: TokenProvider | None = None,
        options: ClientOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> DataverseClient:
        """The process's client for DATAVERSE_URL; its gate is shared with every other client of
        the same environment in this process. `tokens` defaults to the Azure identity."""
        options = options or ClientOptions.from_settings(settings)
        return cls(
            settings.dataverse_url,
            tokens or azure_token_provider(settings.dataverse_url),
            options=options,
            gate=shared_gate(settings.dataverse_url.rstrip("/").lower(), options.gate),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"DataverseClient(api_url={self.api_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        options = self.options
        pool = max(options.gate.max_concurrency, 1)
        return httpx.AsyncClient(
            base_url=self.api_url,
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "If-None-Match": "null",
                "User-Agent": options.user_agent,
            },
            timeout=httpx.Timeout(options.read_timeout, connect=options.connect_timeout),
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            # No server affinity: a cookie the load balancer sets must not follow later calls.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            follow_redirects=False,
            transport=self._transport,
        )

    # -- writes -----------------------------------------------------------------------------------

    async def create(
        self,
        entity_set: str,
        row: Mapping[str, Any],
        *,
        select: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """POST a new row: 204 with `OData-EntityId`, or with `select` 201 and the row
        (create-entity-web-api.md). Not idempotent, so not repeated once it may have arrived."""
        path, prefer = self._returning(check_name(entity_set, "entity set"), select)
        response = await self._exchange(
            "POST",
            path,
            content=json_bytes(row_body(row)),
            headers=_merge({"Content-Type": "application/json"}, prefer, headers),
            idempotent=False,
            write=True,
        )
        return _write_result(response, created=True)

    async def upsert(
        self,
        entity_set: str,
        key: RowKey,
        row: Mapping[str, Any],
        *,
        mode: UpsertMode = UpsertMode.UPSERT,
        select: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """PATCH `/set(<key>)` (use-upsert-insert-update-record.md). `mode` adds `If-Match: *`
        (update only: 404 when missing) or `If-None-Match: *` (create only: 412 when present).
        With `select` the answer is 201 (created) or 200 (updated) with those columns; keep it
        to the primary key, the extra read costs. Leave the key columns out of `row`."""
        conditions: dict[str, str] = {}
        if mode is UpsertMode.CREATE_ONLY:
            conditions["If-None-Match"] = "*"
        elif mode is UpsertMode.UPDATE_ONLY:
            conditions["If-Match"] = "*"
        path, prefer = self._returning(entity_path(entity_set, key), select)
        response = await self._exchange(
            "PATCH",
            path,
            content=json_bytes(row_body(row)),
            headers=_merge({"Content-Type": "application/json"}, conditions, prefer, headers),
            # A create-only PATCH repeated after it took effect would answer 412: not repeatable.
            idempotent=mode is not UpsertMode.CREATE_ONLY,
            write=True,
        )
        return _write_result(response, created=True if mode is UpsertMode.CREATE_ONLY else None)

    async def update(
        self,
        entity_set: str,
        key: RowKey,
        row: Mapping[str, Any],
        *,
        etag: str | None = None,
        select: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """PATCH an existing row, never creating one: `If-Match: *`, or `If-Match: <etag>` for
        optimistic concurrency (412 `ConcurrencyError` when the row changed since it was read)."""
        path, prefer = self._returning(entity_path(entity_set, key), select)
        response = await self._exchange(
            "PATCH",
            path,
            content=json_bytes(row_body(row)),
            headers=_merge(
                {"Content-Type": "application/json", "If-Match": etag or "*"}, prefer, headers
            ),
            idempotent=etag is None,
            write=True,
        )
        return _write_result(response, created=False)

    async def delete(
        self, entity_set: str, key: RowKey, *, etag: str | None = None, missing_ok: bool = False
    ) -> bool:
        """DELETE a row; True if it was deleted, False if missing and `missing_ok`."""
        try:
            await self._exchange(
                "DELETE",
                entity_path(entity_set, key),
                headers={"If-Match": etag} if etag else {},
                idempotent=True,
                write=True,
            )
        except NotFoundError:
            if missing_ok:
                return False
            raise
        return True

    # -- reads ------------------------------------------------------------------------------------

    async def retrieve(
        self,
        entity_set: str,
        key: RowKey,
        *,
        select: Sequence[str],
        expand: str | None = None,
        if_none_match: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Retrieved:
        """GET one row by id or alternate key. With `if_none_match` (an ETag) an unchanged row
        answers 304 and comes back as `not_modified` (perform-conditional-operations)."""
        path = with_query(
            entity_path(entity_set, key), {"$select": select_list(select), "$expand": expand}
        )
        response = await self._exchange(
            "GET",
            path,
            headers=_merge({"If-None-Match": if_none_match} if if_none_match else {}, headers),
            idempotent=True,
        )
        if response.status_code == 304:
            return Retrieved(None, if_none_match, not_modified=True)
        row = _json_object(response, "GET", path)
        etag = response.headers.get("etag") or _text(row.get("@odata.etag"))
        return Retrieved(row, etag)

    async def query(
        self,
        entity_set: str,
        *,
        select: Sequence[str],
        filter: str | None = None,
        orderby: str | None = None,
        expand: str | None = None,
        top: int | None = None,
        count: bool = False,
        page_size: int | None = None,
        annotations: str | None = None,
    ) -> Page:
        """The first page of a query. `filter` is an OData expression (see `odata.eq`,
        `odata.filter_literal`); `page_size` sends `Prefer: odata.maxpagesize` (at most 5,000;
        `$top` is ignored with it, page-results.md)."""
        path = with_query(
            check_name(entity_set, "entity set"),
            {
                "$select": select_list(select),
                "$filter": filter,
                "$orderby": orderby,
                "$expand": expand,
                "$top": top,
                "$count": True if count else None,
            },
        )
        return await self._page("GET", path, _prefer(page_size, annotations=annotations), page_size)

    async def next_page(self, page: Page) -> Page | None:
        """The page after `page`, by its `@odata.nextLink` unchanged and the same page size."""
        if page.next_link is None:
            return None
        return await self._page("GET", page.next_link, _prefer(page.page_size), page.page_size)

    async def rows(
        self,
        entity_set: str,
        *,
        select: Sequence[str],
        filter: str | None = None,
        orderby: str | None = None,
        expand: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[Row]:
        """Every row of a query, page by page."""
        page: Page | None = await self.query(
            entity_set,
            select=select,
            filter=filter,
            orderby=orderby,
            expand=expand,
            page_size=page_size,
        )
        while page is not None:
            for row in page.rows:
                yield row
            page = await self.next_page(page)

    async def start_tracking(
        self, entity_set: str, *, select: Sequence[str], page_size: int | None = None
    ) -> Changes:
        """All rows of a table and the delta link to read its changes from next time (`Prefer:
        odata.track-changes`; $filter, $orderby, $expand and $top are not allowed with it).
        `delta_link` is None when the table does not track changes."""
        path = with_query(check_name(entity_set, "entity set"), {"$select": select_list(select)})
        return await self._collect_changes(path, page_size, track=True, previous=None)

    async def changes_since(self, delta_link: str, *, page_size: int | None = None) -> Changes:
        """New or changed rows and deleted ids since `delta_link`, and the next delta link.
        An answer without a new link (the docs say an empty response means no changes) keeps the
        one given. An expired token (older than ExpireChangeTrackingInDays) raises ApiError:
        start again with `start_tracking` or a modifiedon window."""
        return await self._collect_changes(delta_link, page_size, track=False, previous=delta_link)

    async def who_am_i(self) -> Row:
        """`GET WhoAmI`: a cheap call that also tells the gate the DOP hint."""
        response = await self._exchange("GET", "WhoAmI", idempotent=True)
        return _json_object(response, "GET", "WhoAmI")

    # -- $batch -----------------------------------------------------------------------------------

    async def execute_batch(
        self,
        items: Sequence[BatchItem],
        *,
        continue_on_error: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> BatchResult:
        """Sends `items` as one `POST $batch` and returns every operation's outcome, in order.

        Items answered 429 (and, when idempotent, 502/503/504) are sent again, alone, after the
        wait, up to the retry policy's limits; so are items left unexecuted behind such a
        failure. Other failures are in the result, not raised. Raises `ApiError` only when the
        batch as a whole is refused (a JSON error instead of a multipart answer), and
        `BatchFormatError` before sending a batch Dataverse would refuse.
        """
        items = tuple(items)
        validate_batch(items)  # the whole batch, once, before anything is sent
        pending = list(range(len(items)))
        final: dict[int, ItemResult] = {}
        policy = self.options.retry
        attempt = 0
        waited = 0.0
        consecutive_429 = 0
        status = 0
        while True:
            attempt += 1
            subset = [items[i] for i in pending]
            encoded = encode_batch(subset, service_root=self._service_root)
            response = await self._exchange(
                "POST",
                "$batch",
                content=encoded.body,
                headers=_merge(
                    {"Content-Type": encoded.content_type},
                    {"Prefer": "odata.continue-on-error"} if continue_on_error else {},
                    headers,
                ),
                idempotent=all(item.is_idempotent for item in subset),
                write=True,
                keep=_is_batch_answer,
            )
            self.stats.batches += 1
            self.stats.batch_operations += encoded.operations
            status = response.status_code
            try:
                units = parse_batch_response(response.content, response.headers.get("content-type"))
                result = match_responses(subset, units, status=status)
            except BatchFormatError as exc:
                raise ResponseFormatError(
                    f"unreadable $batch response: {exc}",
                    method="POST",
                    path="$batch",
                    status=status,
                ) from None
            for index, item_result in zip(pending, result.items, strict=True):
                final[index] = item_result
            again, throttled_parts, retry_after = _to_send_again(pending, result.items)
            if not again:
                break
            self.stats.throttled += throttled_parts
            consecutive_429 = consecutive_429 + 1 if throttled_parts else 0
            if retry_after is None and throttled_parts:
                retry_after = retry_after_seconds(response.headers, now=time.time())
            decision = policy.after_status(
                429 if throttled_parts else 503,
                idempotent=True,
                attempt=attempt,
                waited=waited,
                retry_after=retry_after,
                consecutive_429=max(1, consecutive_429),
                rng=self._rng,
            )
            if decision.action is not Action.RETRY:
                log.warning(
                    "Dataverse $batch: %d item(s) not sent again (%s)",
                    len(again),
                    decision.reason,
                    extra=_fields("POST", "$batch", status, attempt),
                )
                break
            self.stats.retries += len(again)
            if decision.pause_all:
                self.gate.throttled(decision.delay)
                waited += decision.delay  # our next send waits it out at the gate
                log.info(
                    "Dataverse throttled %d batch item(s): every caller waits %.1f s",
                    throttled_parts,
                    decision.delay,
                    extra=_fields("POST", "$batch", 429, attempt),
                )
            else:
                waited += await self._sleep(decision.delay)
            pending = again
        return BatchResult(status, tuple(final[i] for i in range(len(items))))

    # -- the exchange -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        write: bool | None = None,
        raise_for_status: bool = True,
    ) -> httpx.Response:
        """Any Web API call (a function, an action, metadata), through the gate and the retry
        policy. `url` is relative to the service root or a same-origin absolute link. With
        `raise_for_status=False` an error status that is not retried (or still failing after
        the retries) is returned instead of raised, for callers that read statuses themselves
        (a 404 on a table definition means "missing")."""
        method = method.upper()
        content = None if body is None else json_bytes(body)
        return await self._exchange(
            method,
            url,
            content=content,
            headers=_merge({"Content-Type": "application/json"} if content else {}, headers),
            idempotent=method != "POST" if idempotent is None else idempotent,
            write=method != "GET" if write is None else write,
            return_errors=not raise_for_status,
        )

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        write: bool = False,
        keep: Callable[[httpx.Response], bool] | None = None,
        return_errors: bool = False,
    ) -> httpx.Response:
        self._check_origin(url)
        headers = dict(headers or {})
        options = self.options
        timeout = httpx.Timeout(
            options.write_timeout if write else options.read_timeout,
            connect=options.connect_timeout,
        )
        policy = self.options.retry
        attempt = 0
        waited = 0.0
        consecutive_429 = 0
        while True:
            attempt += 1
            token = await self._tokens.token()
            paused = await self.gate.acquire()
            waited += self._note_wait(paused)
            self.stats.requests += 1
            try:
                response = await self._http.get().request(
                    method,
                    url,
                    content=content,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                    timeout=timeout,
                )
            except httpx.RequestError as exc:
                self.gate.release()
                self.stats.transport_errors += 1
                delivery = Delivery.NOT_SENT if isinstance(exc, _NOT_SENT) else Delivery.MAYBE_SENT
                decision = policy.after_transport_error(
                    delivery, idempotent=idempotent, attempt=attempt, waited=waited, rng=self._rng
                )
                if decision.action is Action.RETRY:
                    waited += await self._retry(decision, method, url, attempt, None)
                    continue
                raise self._transport_error(exc, decision, method, url) from None
            except BaseException:
                self.gate.release()
                raise
            self.gate.release()
            self.gate.observe(response.headers)
            status = response.status_code
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            if status < 400:
                self.gate.succeeded()
                return response
            if keep is not None and keep(response):
                return response
            retry_after = retry_after_seconds(response.headers, now=time.time())
            if status == 429:
                consecutive_429 += 1
                self.stats.throttled += 1
            else:
                consecutive_429 = 0
            decision = policy.after_status(
                status,
                # Dataverse refuses a 429 before doing anything, so even a create may be resent.
                idempotent=idempotent or status == 429,
                attempt=attempt,
                waited=waited,
                retry_after=retry_after,
                consecutive_429=max(1, consecutive_429),
                rng=self._rng,
            )
            if decision.action is Action.RETRY:
                if decision.pause_all:
                    self.gate.throttled(decision.delay)
                    self.stats.retries += 1
                    log.info(
                        "Dataverse throttled: every caller waits %.1f s",
                        decision.delay,
                        extra=_fields(method, url, status, attempt),
                    )
                else:
                    waited += await self._retry(decision, method, url, attempt, status)
                continue
            if return_errors and decision.action is Action.FAIL:
                return response
            error = error_for(
                status,
                response.headers,
                response.content,
                method=method,
                url=url,
                request_headers=headers,
                reason=response.reason_phrase,
            )
            if decision.action is Action.OUTCOME_UNKNOWN:
                raise OutcomeUnknownError(
                    "the create may or may not have been applied; look before writing again",
                    method=method,
                    path=safe_path(url),
                    status=status,
                    code=error.code,
                    message=error.message,
                    request_id=error.request_id,
                ) from None
            raise error

    async def _retry(
        self, decision: Decision, method: str, url: str, attempt: int, status: int | None
    ) -> float:
        self.stats.retries += 1
        log.warning(
            "Dataverse call failed (%s); retrying in %.1f s",
            decision.reason,
            decision.delay,
            extra=_fields(method, url, status, attempt),
        )
        return await self._sleep(decision.delay)

    async def _sleep(self, seconds: float) -> float:
        return self._note_wait(await self.gate.wait(seconds))

    def _note_wait(self, seconds: float) -> float:
        if seconds > 0:
            self.stats.waits += 1
            self.stats.waited_seconds += seconds
        return seconds

    def _check_origin(self, url: str) -> None:
        if not url.lower().startswith(("http://", "https://", "//")):
            return  # relative to the service root
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc.lower()) != self._origin:
            raise ValueError(
                f"refusing to send the Dataverse token to {parts.scheme}://{parts.netloc}: "
                "links are followed only on the environment's own origin"
            )

    def _transport_error(
        self, exc: httpx.RequestError, decision: Decision, method: str, url: str
    ) -> DataverseError:
        cause = type(exc).__name__
        if decision.action is Action.OUTCOME_UNKNOWN:
            return OutcomeUnknownError(
                f"no response ({cause}); the create may or may not have been applied, "
                "look before writing again",
                method=method,
                path=safe_path(url),
            )
        return TransportError(
            f"no response ({cause}): {decision.reason}", method=method, path=safe_path(url)
        )

    def _returning(self, path: str, select: Sequence[str] | None) -> tuple[str, dict[str, str]]:
        if not select:
            return path, {}
        return with_query(path, {"$select": select_list(select)}), {
            "Prefer": "return=representation"
        }

    async def _page(
        self, method: str, url: str, prefer: Mapping[str, str], page_size: int | None
    ) -> Page:
        response = await self._exchange(method, url, headers=prefer, idempotent=True)
        return _read_page(_json_object(response, method, url), page_size, url)

    async def _collect_changes(
        self, url: str, page_size: int | None, *, track: bool, previous: str | None
    ) -> Changes:
        prefer = _prefer(page_size, track_changes=track)
        rows: list[Row] = []
        deleted: list[uuid.UUID] = []
        delta_link: str | None = None
        next_url: str | None = url
        tracked = not track
        while next_url is not None:
            response = await self._exchange("GET", next_url, headers=prefer, idempotent=True)
            applied = response.headers.get("preference-applied", "")
            tracked = tracked or "odata.track-changes" in applied
            if not response.content.strip():
                break  # "An empty JSON response is returned if no table changes have occurred"
            page = _read_page(_json_object(response, "GET", next_url), page_size, next_url)
            rows.extend(page.rows)
            deleted.extend(page.deleted)
            delta_link = page.delta_link or delta_link
            next_url = page.next_link
        if delta_link is None and tracked:
            delta_link = previous
        return Changes(tuple(rows), tuple(deleted), delta_link)


# -- helpers ------------------------------------------------------------------------------------


def _is_batch_answer(response: httpx.Response) -> bool:
    """An error status with a multipart body is a batch that ran and stopped at a failure."""
    return (
        is_multipart(response.headers.get("content-type")) or response.content.lstrip()[:2] == b"--"
    )


def _to_send_again(
    pending: Sequence[int], results: Sequence[ItemResult]
) -> tuple[list[int], int, float | None]:
    """Which items to resend: refused with 429 (nothing was done), or failed with 408/502/503/504
    when idempotent, and, if any of those stopped the batch, the items it never reached."""
    again: list[int] = []
    throttled = 0
    retry_after: float | None = None
    stopped = False
    for index, result in zip(pending, results, strict=True):
        error = result.error
        if error is not None and error.status == 429:
            throttled += 1
            again.append(index)
            stopped = True
            if error.retry_after is not None:
                retry_after = max(retry_after or 0.0, error.retry_after)
        elif error is not None and error.status in TRANSIENT_STATUSES and result.item.is_idempotent:
            again.append(index)
            stopped = True
        elif stopped and all(r.outcome is Outcome.NOT_EXECUTED for r in result.operations):
            again.append(index)
    return again, throttled, retry_after


def _merge(*parts: Mapping[str, str] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for part in parts:
        if part:
            merged.update(part)
    return merged


def _prefer(
    page_size: int | None, *, annotations: str | None = None, track_changes: bool = False
) -> dict[str, str]:
    values: list[str] = []
    if page_size is not None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        values.append(f"odata.maxpagesize={page_size}")
    if track_changes:
        values.append("odata.track-changes")
    if annotations:
        values.append(f'odata.include-annotations="{annotations}"')
    return {"Prefer": ", ".join(values)} if values else {}


def _json_object(response: httpx.Response, method: str, url: str) -> Row:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ResponseFormatError(
            "the response is not a JSON object",
            method=method,
            path=safe_path(url),
            status=response.status_code,
        )
    return body


def _read_page(body: Row, page_size: int | None, url: str) -> Page:
    value = body.get("value")
    if not isinstance(value, list):
        raise ResponseFormatError("a collection without 'value'", method="GET", path=safe_path(url))
    rows: list[Row] = []
    deleted: list[uuid.UUID] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        context = _text(item.get("@odata.context")) or ""
        if context.endswith(_DELETED_SUFFIX) or (
            item.get("reason") == "deleted" and "id" in item and len(item) <= 3
        ):
            try:
                deleted.append(uuid.UUID(str(item.get("id"))))
            except ValueError:
                continue
        else:
            rows.append(item)
    count = body.get("@odata.count")
    return Page(
        rows=tuple(rows),
        next_link=_text(body.get("@odata.nextLink")),
        count=count if isinstance(count, int) else None,
        page_size=page_size,
        delta_link=_text(body.get("@odata.deltaLink")),
        deleted=tuple(deleted),
    )


def _write_result(response: httpx.Response, *, created: bool | None) -> WriteResult:
    entity_id = response.headers.get("odata-entityid")
    row: Row | None = None
    if response.content.strip():
        try:
            decoded = response.json()
        except ValueError:
            decoded = None
        row = decoded if isinstance(decoded, dict) else None
    status = response.status_code
    if status == 201:
        created = True
    elif status == 200:
        created = False
    etag = response.headers.get("etag") or (_text(row.get("@odata.etag")) if row else None)
    return WriteResult(
        status=status,
        entity_id=entity_id,
        ref=parse_entity_id(entity_id) if entity_id else None,
        created=created,
        row=row,
        etag=etag,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _fields(method: str, url: str, status: int | None, attempt: int) -> dict[str, object]:
    return {
        "dv_method": method,
        "dv_path": safe_path(url),
        "dv_status": status,
        "dv_attempt": attempt,
    }
