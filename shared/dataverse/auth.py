"""Bearer tokens for the Dataverse Web API, behind a one-method port.

In Azure the Function's managed identity (bound to a Dataverse application user) gets a token
for the scope `<environment URL>/.default` (authenticate-oauth.md: a confidential client uses
".default"). Tokens live about an hour, so one is fetched per request from a cache rather than
once at start-up; the credential is created once per process.

`CredentialTokenProvider` takes a synchronous azure-identity credential by default and calls it
in a worker thread only when its cached token is within `refresh_margin` of expiry. Synchronous,
because the asynchronous credentials need aiohttp, which is not among the function app's runtime
requirements, while the synchronous ones use `requests`, which azure-core already brings. An
`AsyncTokenCredential` is accepted as well, for callers that have aiohttp.

Against the local Web API stand-in the token is a static secret (`StaticTokenProvider`); the
local stack reads it from LOCAL_DATAVERSE_TOKEN and passes it in. `token_provider_for` refuses to
send a static token anywhere but a loopback address, so the stand-in's secret never reaches a
real environment. Tokens never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from pydantic import SecretStr


@runtime_checkable
class TokenProvider(Protocol):
    async def token(self) -> str:
        """A bearer token valid for at least the next request."""
        ...


class StaticTokenProvider:
    """One fixed token: the local Web API stand-in's shared secret."""

    def __init__(self, token: str | SecretStr) -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        if not secret.get_secret_value():
            raise ValueError("the static Dataverse token is empty")
        self._token = secret

    def __repr__(self) -> str:
        return "StaticTokenProvider(token='**********')"

    async def token(self) -> str:
        return self._token.get_secret_value()


class CredentialTokenProvider:
    """Tokens from an azure-identity credential for one scope, cached until near expiry."""

    def __init__(
        self,
        credential: TokenCredential | AsyncTokenCredential,
        scope: str,
        *,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credential = credential
        self.scope = scope
        self._margin = refresh_margin
        self._clock = clock
        self._cached: AccessToken | None = None

    def __repr__(self) -> str:
        return f"CredentialTokenProvider(scope={self.scope!r})"

    async def token(self) -> str:
        cached = self._cached
        if cached is not None and cached.expires_on - self._margin > self._clock():
            return cached.token
        # Concurrent refreshes are harmless: the credential has its own cache.
        getter = self._credential.get_token
        if inspect.iscoroutinefunction(getter):
            fresh: AccessToken = await getter(self.scope)
        else:
            fresh = await asyncio.to_thread(getter, self.scope)  # type: ignore[arg-type]
        self._cached = fresh
        return fresh.token

    async def aclose(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is None:
            return
        result = close()
        if inspect.isawaitable(result):
            await result


def scope_for(dataverse_url: str) -> str:
    """`https://contoso.crm.dynamics.com/.default`."""
    parts = urlsplit(dataverse_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def azure_token_provider(
    dataverse_url: str, *, managed_identity_client_id: str | None = None
) -> CredentialTokenProvider:
    """The Function's identity: a user-assigned managed identity when its client id is given,
    else DefaultAzureCredential (system-assigned identity in Azure, the developer's sign-in
    on a workstation). Creating it makes no request."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    credential: TokenCredential
    if managed_identity_client_id:
        credential = ManagedIdentityCredential(client_id=managed_identity_client_id)
    else:
        credential = DefaultAzureCredential()
    return CredentialTokenProvider(credential, scope_for(dataverse_url))


def token_provider_for(
    dataverse_url: str,
    *,
    static_token: str | SecretStr | None = None,
    managed_identity_client_id: str | None = None,
) -> TokenProvider:
    """A static token for the local stand-in (loopback URLs only), else the Azure identity."""
    if static_token is not None:
        if not is_loopback_url(dataverse_url):
            raise ValueError(
                "a static Dataverse token is only sent to the local stand-in (a loopback "
                "DATAVERSE_URL); real environments use the managed identity"
            )
        return StaticTokenProvider(static_token)
    return azure_token_provider(
        dataverse_url, managed_identity_client_id=managed_identity_client_id
    )
