"""Function keys for the local host: generated once, kept in an ignored file, printed at start."""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostKeys:
    master: str
    default: str

    def allows(self, auth_level: str, presented: str | None) -> bool:
        if auth_level == "ANONYMOUS":
            return True
        if not presented:
            return False
        if hmac.compare_digest(presented, self.master):
            return True
        return auth_level == "FUNCTION" and hmac.compare_digest(presented, self.default)


def load_or_create(path: Path) -> HostKeys:
    if path.exists():
        data = json.loads(path.read_text())
        return HostKeys(master=data["masterKey"], default=data["functionKeys"]["default"])
    keys = HostKeys(master=secrets.token_urlsafe(32), default=secrets.token_urlsafe(32))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"masterKey": keys.master, "functionKeys": {"default": keys.default}})
    )
    tmp.chmod(0o600)
    tmp.replace(path)
    return keys
