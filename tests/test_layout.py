"""The package tree: dependencies point downwards, the public API, presets checked without model classes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mamlib

ROOT = Path(mamlib.__file__).parent
#: What each subpackage may import from mamlib (besides the root's ``__version__``).
ALLOWED: dict[str, set[str]] = {
    "common": {"common"},
    "merge": {"merge"},
    "models": {"common", "merge", "models"},
    "asr": {"common", "merge", "models", "asr"},
    "aec": {"common", "merge", "models", "aec"},
    "finetune": {"common", "merge", "models", "asr", "aec", "finetune"},
    "analysis": {"common", "merge", "models", "asr", "aec", "analysis"},
    "presets": {"common", "merge", "models", "asr", "aec", "finetune", "presets"},
    "sweeps": {"common", "merge", "models", "asr", "aec", "finetune", "presets", "sweeps"},
    "selection": {"common", "merge", "models", "asr", "aec", "finetune", "presets", "sweeps", "selection"},
    "cli": {"common", "merge", "models", "asr", "aec", "finetune", "presets", "cli"},
    "report": {"common", "merge", "models", "asr", "aec", "finetune", "analysis", "presets", "sweeps", "selection",
               "report"},
}


def _mamlib_imports(path: Path) -> set[str]:
    """The mamlib subpackages a module imports, at any depth (lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.module != "mamlib" else [f"mamlib.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mamlib" and len(parts) > 1 and parts[1] != "__version__":
                found.add(parts[1])
    return found


def test_every_module_lives_in_a_known_subpackage():
    flat = sorted(p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert flat == [], f"modules outside the package tree: {flat}"
    assert {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_downwards(package):
    for path in sorted((ROOT / package).glob("*.py")):
        bad = _mamlib_imports(path) - ALLOWED[package]
        assert not bad, f"{path.relative_to(ROOT)} imports mamlib.{sorted(bad)}, above {package}/"


def test_public_api():
    from mamlib import AttentionMerger, interpolate, load_preset, open_chapter  # noqa: F401

    assert set(mamlib.__all__) >= {"AttentionMerger", "interpolate", "load_preset", "SweepGrid", "__version__"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mamlib.nope  # noqa: B018


def test_import_and_preset_checks_load_no_model_classes():
    """``import mamlib`` and loading (validating) every preset import no transformers model class."""
    code = (
        "import sys, mamlib\n"
        "from mamlib.presets.schema import load_preset\n"
        "for n in ('smoke', 'mini', 'paper'): load_preset(n)\n"
        "print(sorted(m for m in sys.modules if m.startswith('transformers')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_book_facade_resolves_every_name():
    """Every name the chapters import from ``mamlib.report`` is a function, class or table, never a module that a
    submodule of the same name would shadow."""
    import types

    import mamlib.report as report

    for name in report.BOOK:
        assert not isinstance(getattr(report, name), types.ModuleType), name
