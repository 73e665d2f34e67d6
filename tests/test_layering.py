"""The packages' layering (ARCHITECTURE.md): the app factory (app.py) sits above every package and
none imports it back; core/ imports no other package of ours."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("admin", "core", "display", "hardware", "kiosk", "messaging", "reports", "scheduler", "staff")


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    """Every top-level module a file imports (absolute imports; relative ones stay in the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def files_of(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_walk_sees_imports_it_must_refuse(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom staff import routes\n\ndef f():\n    import messaging.models\n"
                      "from . import sibling\n")
    assert {name for name, _ in imported_top_levels(sample)} == {"os", "staff", "messaging"}


def test_core_imports_no_other_package_of_ours():
    assert files_of("core"), "core/ has no Python files?"
    forbidden = (set(PACKAGES) - {"core"}) | {"app", "run"}
    offences = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                for path in files_of("core") for name, line in imported_top_levels(path) if name in forbidden]
    assert offences == []


@pytest.mark.parametrize("package", [p for p in PACKAGES if (ROOT / p).is_dir()])
def test_no_package_imports_the_app_factory(package):
    offences = [f"{path.relative_to(ROOT)}:{line}" for path in files_of(package)
                for name, line in imported_top_levels(path) if name in ("app", "run")]
    assert offences == []
