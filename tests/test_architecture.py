"""The layering rule: the domain core never imports the web layer or Django."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "trialdesk"
#: every package except the web layer and the CLI is domain core
DOMAIN_PACKAGES = sorted(p.name for p in PACKAGE.iterdir()
                         if p.is_dir() and (p / "__init__.py").exists()
                         and p.name not in {"web", "cli"})
FORBIDDEN = ("django", "ninja", "simple_history", "django_htmx", "trialdesk.web",
             "trialdesk.cli", "typer", "rich")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _domain_modules() -> list[Path]:
    files = [PACKAGE / "errors.py"]
    for name in DOMAIN_PACKAGES:
        if (PACKAGE / name).is_dir():
            files += sorted((PACKAGE / name).rglob("*.py"))
    return files


@pytest.mark.parametrize("path", _domain_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_domain_module_imports_no_web_framework(path: Path):
    bad = [name for name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}: keep the domain core pure"


def test_clinical_core_does_not_depend_on_protocols_or_engines():
    """clinical is the bottom layer: protocol, eligibility … build on it, not the reverse."""
    for path in sorted((PACKAGE / "clinical").rglob("*.py")):
        higher = [n for n in _imports(path)
                  if n.startswith(("trialdesk.protocol", "trialdesk.eligibility"))]
        assert not higher, f"{path.name} imports {higher}"
