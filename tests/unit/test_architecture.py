"""Layer rules import-linter cannot express: shared/ never imports azure.functions."""

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"


def test_shared_never_imports_azure_functions() -> None:
    offenders = []
    for path in SHARED.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path}: {n}" for n in names if n.split(".")[:2] == ["azure", "functions"]
            ]
    assert offenders == []
    assert any(SHARED.rglob("*.py")), "the check must have read shared/"
