"""The one-machine stack's state store: the `StateStore` port on a SQLite file.

The local host installs it (`bootstrap.override(state=...)`) when STATE_TRANSPORT is `local`;
the operator CLI opens the same file, found the same way, with `state_db_path`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from local.state.sqlite_store import SqliteStateStore

STATE_DB_SETTING = "LOCAL_STATE_DB"
STATE_DB_FILE = "state.sqlite3"


def state_db_path(environ: Mapping[str, str], state_dir: Path) -> Path:
    """LOCAL_STATE_DB when set, else `<LOCAL_STATE_DIR>/state.sqlite3` (`state_dir`)."""
    configured = environ.get(STATE_DB_SETTING)
    return Path(configured) if configured else state_dir / STATE_DB_FILE


__all__ = ["STATE_DB_FILE", "STATE_DB_SETTING", "SqliteStateStore", "state_db_path"]
