"""The state store check: the app's state store (Table Storage, or the local SQLite file)
answers a read. Nothing is created: a table or file that does not exist yet is reported, as
the app creates it on first use (a reconciliation sweep or a webhook health check)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from shared.diagnostics.result import CheckResult

NAME: Final = "state store"
HINT: Final = (
    "check STATE_TABLE_ENDPOINT (or STATE_CONNECTION_STRING), the network path to the storage "
    "account and that the identity has Storage Table Data Contributor; locally, "
    "STATE_TRANSPORT=local with LOCAL_STATE_DIR or LOCAL_STATE_DB"
)
NOT_YET_HINT: Final = (
    "the app creates it on first use (the reconciliation timer, a webhook health check, or "
    "`python -m cli webhooks register`); if it stays missing, the identity may lack Storage "
    "Table Data Contributor"
)

# Reads the store: True when it answered, False when its table or file does not exist yet.
StateRead = Callable[[], Awaitable[bool]]


async def check_state(read: StateRead, where: str) -> CheckResult:
    if not await read():
        return CheckResult.warned(NAME, f"{where}: does not exist yet", NOT_YET_HINT)
    return CheckResult.passed(NAME, f"{where}: answers")
