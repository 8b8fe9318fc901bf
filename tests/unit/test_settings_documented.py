"""Every setting the code reads is in local.settings.json.example and in the README table."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import AliasChoices

from local.stack.plan import LOCAL_SETTINGS
from shared.config.settings import STORE_FIELDS, Settings, store_setting_name

REPO = Path(__file__).resolve().parents[2]


def setting_names() -> list[str]:
    names = ["BIGCOMMERCE_STORES"]
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.append(str(alias.choices[0]))
        elif alias:
            names.append(str(alias))
    return names + list(LOCAL_SETTINGS)


def test_example_file_lists_every_setting() -> None:
    values = json.loads((REPO / "local.settings.json.example").read_text())["Values"]
    expected = setting_names() + [store_setting_name("abc123", f) for f in STORE_FIELDS]
    missing = [name for name in expected if name not in values]
    assert missing == []


def test_readme_table_lists_every_setting_with_a_default_and_secrecy() -> None:
    readme = (REPO / "README.md").read_text()
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^\| `([A-Za-z0-9_<>]+)` \|.*\| (yes|no) \|$", readme, re.M)
    }
    expected = setting_names() + [store_setting_name("<HASH>", f) for f in STORE_FIELDS]
    expected = [n.replace("<hash>", "<HASH>") for n in expected]
    missing = [name for name in expected if name not in rows]
    assert missing == []
