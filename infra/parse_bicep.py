"""Parses every .bicep file under infra/ with the installed pycep-parser; exits 1 on any failure.

`make checkov` runs it with checkov's own pycep-parser (checkov pins an older one than the
structural tests use), because checkov reports a file it cannot parse as a parsing error and
still exits 0: without this, a template checkov cannot read would pass unscanned.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from pycep import BicepParser


def main() -> int:
    root = Path(__file__).resolve().parent
    parser = BicepParser()
    failed = 0
    files = sorted(root.rglob("*.bicep"))
    for path in files:
        try:
            parser.parse(file_path=path)
        except Exception as exc:  # lark raises several unrelated types
            failed += 1
            print(f"{path.relative_to(root.parent)}: {type(exc).__name__}: {exc}", file=sys.stderr)
    print(f"pycep-parser {version('pycep-parser')}: {len(files) - failed} of {len(files)} parsed")
    return 1 if failed or not files else 0


if __name__ == "__main__":
    sys.exit(main())
