"""`make start` writes the stack's settings for the operator CLI to source."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from local.stack.env_file import read_env_file, write_env_file


def test_the_file_holds_the_connector_settings_quoted_for_a_shell(tmp_path: Path) -> None:
    environ = {
        "BIGCOMMERCE_STORES": "localstore1",
        "DATAVERSE_POLL_SCHEDULE": "*/30 * * * * *",
        "WEBHOOK_FUNCTION_KEY": "it's-a-key $HOME `x`",
        "WEBHOOK_DESTINATION_URL": "",
        "LOCAL_BROKER_PATH": "/tmp/stack dir/broker.sqlite3",
        "AZURE_CLIENT_ID": "abc",
        "HOME": "/root",  # not a setting of ours
        "PATH": "/usr/bin",
    }

    path = write_env_file(tmp_path / "stack.env", environ)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    expected = {k: v for k, v in environ.items() if k not in ("HOME", "PATH")}
    assert read_env_file(path) == expected
    # What a shell that sources it exports.
    script = f". {path} && env -0"
    shell = subprocess.run(
        ["/bin/sh", "-c", script], env={"PATH": os.environ["PATH"]}, capture_output=True, check=True
    )
    exported = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)
    assert {k: exported.get(k) for k in expected} == expected
