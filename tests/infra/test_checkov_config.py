"""checkov runs in `make test` from its own pinned venv, and every check it skips is listed in
infra/checkov.yaml with a reason (nowhere else)."""

from __future__ import annotations

import re

import yaml

from tests.infra.bicep import INFRA, REPO, bicep_files

CONFIG = INFRA / "checkov.yaml"


def test_every_skipped_check_is_listed_once_with_a_reason() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    skipped = config["skip-check"]
    assert len(skipped) == len(set(skipped))
    lines = CONFIG.read_text().splitlines()
    for check in skipped:
        assert re.fullmatch(r"CKV_AZURE_\d+", check), check
        (line,) = [line for line in lines if re.match(rf"\s*- {check}\s", line)]
        reason = line.partition("#")[2].strip()
        assert len(reason) >= 30, f"{check} is skipped without a reason"


def test_checkov_scans_the_bicep_offline() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["directory"] == ["infra"]
    assert config["framework"] == ["bicep"]
    assert config["skip-download"] is True


def test_no_check_is_skipped_inline() -> None:
    for path in bicep_files():
        assert "checkov:skip" not in path.read_text(), path.name


def test_checkov_is_pinned_and_part_of_make_test() -> None:
    pins = [
        line
        for line in (REPO / "requirements-checkov.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert any(re.fullmatch(r"checkov==\d+\.\d+\.\d+", line) for line in pins)
    assert all("==" in line for line in pins)
    makefile = (REPO / "Makefile").read_text()
    (test_rule,) = re.findall(r"^test:(.*)$", makefile, re.M)
    assert "checkov" in test_rule.split()
    assert ".venv-checkov" in (REPO / ".gitignore").read_text()
    assert ".venv-checkov" in (REPO / ".funcignore").read_text().split()
