"""Key Vault references App Service could not resolve.

An app setting `@Microsoft.KeyVault(SecretUri=...)` or `@Microsoft.KeyVault(VaultName=...;
SecretName=...)` is replaced by the secret when the app's identity can read it; when it cannot
(no such secret yet, no access, a wrong identity, a firewall) the app receives the reference text
itself, which would pass for a token or a secret until the first 401.
"""

from __future__ import annotations

import re
from typing import Final

KEY_VAULT_REFERENCE: Final = re.compile(
    r"^\s*@Microsoft\.KeyVault\((?P<body>.*)\)\s*$", re.I | re.S
)
UNRESOLVED: Final = (
    "is a Key Vault reference the app could not resolve (does the secret exist, and does the "
    "app's identity have 'Key Vault Secrets User'?)"
)


def is_key_vault_reference(value: str) -> bool:
    return KEY_VAULT_REFERENCE.match(value) is not None
