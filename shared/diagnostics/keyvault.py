"""Key Vault references the platform could not resolve (shared/config/keyvault.py).

The app refuses to start on an unresolved secret it needs (settings name the first one) and
treats an unresolved WEBHOOK_FUNCTION_KEY as unset; this row names every setting that still
holds a reference, with the vault and secret each one points at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from shared.config.keyvault import KEY_VAULT_REFERENCE
from shared.config.settings import STORES_SETTING, store_setting_name
from shared.diagnostics.result import CheckResult

NAME: Final = "secrets"
_REFERENCE: Final = KEY_VAULT_REFERENCE
# The secrets the connector reads; every one can be a Key Vault reference.
STORE_SECRETS: Final = (
    "ACCESS_TOKEN",
    "WEBHOOK_SECRET",
    "CLIENT_SECRET",
    "WEBHOOK_SECRET_PREVIOUS",
    "CLIENT_SECRET_PREVIOUS",
)
PREVIOUS_SUFFIX: Final = "_PREVIOUS"
LEFTOVER_HINT: Final = (
    "the app treats it as unset, so deliveries signed with the old secret are refused; if the "
    "rotation is over, remove the setting (docs/deployment.md, Rotating secrets)"
)
APP_SECRETS: Final = ("WEBHOOK_FUNCTION_KEY", "ServiceBusConnection", "STATE_CONNECTION_STRING")
HINT: Final = (
    "the app's identity could not read the secret: check that the secret exists in the vault "
    "(bigcommerce-<hash>-access-token, ...), that the identity has the 'Key Vault Secrets User' "
    "role and is the app's keyVaultReferenceIdentity, and the vault's network rules; the "
    "portal shows each reference's status under Environment variables"
)


@dataclass(frozen=True, slots=True)
class UnresolvedReference:
    setting: str
    secret: str  # vault/secret as the reference names it (a reference holds no secret)


def is_reference(value: str) -> bool:
    return _REFERENCE.match(value) is not None


def referenced_secret(value: str) -> str:
    """`vault/secret` from either reference form, or the reference's text when unreadable."""
    match = _REFERENCE.match(value)
    if match is None:
        raise ValueError("not a Key Vault reference")
    body = match.group("body").strip()
    parts: dict[str, str] = {}
    for item in body.split(";"):
        key, sep, text = item.partition("=")
        if sep:
            parts[key.strip().lower()] = text.strip()
    uri = parts.get("secreturi")
    if uri:
        split = urlsplit(uri)
        vault = (split.hostname or "?").split(".")[0]
        segments = [s for s in split.path.split("/") if s]
        name = segments[1] if len(segments) >= 2 and segments[0] == "secrets" else "?"
        return f"{vault}/{name}"
    if "vaultname" in parts or "secretname" in parts:
        return f"{parts.get('vaultname', '?')}/{parts.get('secretname', '?')}"
    return body[:100]


def secret_settings(environ: Mapping[str, str]) -> list[str]:
    """The names of the secret settings the connector reads, for the stores configured."""
    stores = [s.strip() for s in environ.get(STORES_SETTING, "").split(",") if s.strip()]
    names = [store_setting_name(h, field) for h in stores for field in STORE_SECRETS]
    return [*names, *APP_SECRETS]


def unresolved_references(environ: Mapping[str, str]) -> list[UnresolvedReference]:
    """Every setting still holding a Key Vault reference: the connector's secrets first, then
    any other setting (a reference left anywhere is a setting the app reads as that text)."""
    secrets = secret_settings(environ)
    ordered = [*secrets, *sorted(n for n in environ if n not in secrets)]
    return [
        UnresolvedReference(name, referenced_secret(environ[name]))
        for name in ordered
        if name in environ and is_reference(environ[name])
    ]


def check_secrets(environ: Mapping[str, str]) -> CheckResult:
    found = unresolved_references(environ)
    # A rotated-out secret that no longer resolves is the end of a rotation: the app reads it
    # as unset, so the leftover setting is only worth a warning.
    leftovers = [u for u in found if u.setting.endswith(PREVIOUS_SUFFIX)]
    unresolved = [u for u in found if u not in leftovers]
    if unresolved:
        names = ", ".join(f"{u.setting} ({u.secret})" for u in unresolved)
        return CheckResult.failed(NAME, f"unresolved Key Vault reference: {names}", HINT)
    if leftovers:
        names = ", ".join(f"{u.setting} ({u.secret})" for u in leftovers)
        return CheckResult.warned(
            NAME, f"rotated-out secret no longer resolves: {names}", LEFTOVER_HINT
        )
    present = [n for n in secret_settings(environ) if environ.get(n)]
    return CheckResult.passed(
        NAME, f"no unresolved Key Vault reference ({len(present)} secret settings set)"
    )
