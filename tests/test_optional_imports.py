"""Every test module skips, rather than errors, where an optional package is missing.

``pip install deepshap[torch,test]`` must run the PyTorch tests and skip the rest cleanly, but the full
environment of ``make test`` has every extra, so a module-level ``import torch`` without a skip before it
would pass there and break only a smaller install. This reads each test module's top-level statements:
an optional package imported at module level must be guarded by a ``pytest.importorskip`` of it (or of a
package that needs it) earlier in the module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

#: Installed with deepshap[test]: the base dependencies, the test extra's packages, this repository's own
#: modules (the benchmark scripts the harness tests import).
_ALWAYS = {
    "numpy",
    "matplotlib",
    "tqdm",
    "cv2",
    "skimage",
    "scipy",
    "pytest",
    "sklearn",
    "transformers",
    "deepshap",
    "tests",
} | {p.stem for p in (TESTS.parent / "benchmarks").glob("*.py")}
#: Packages installed together by one extra: a skip for one vouches for the other.
_IMPLIES = {"keras": {"tensorflow"}, "tensorflow": {"keras"}}


def _unguarded_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, package)`` of each optional package ``path`` imports at module level with no
    ``importorskip`` of it earlier in the module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded: set[str] = set()
    unguarded = []
    for node in tree.body:
        for call in ast.walk(node):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "importorskip"
                and call.args
                and isinstance(call.args[0], ast.Constant)
            ):
                root = str(call.args[0].value).partition(".")[0]
                guarded |= {root} | _IMPLIES.get(root, set())
        if isinstance(node, ast.Import):
            roots = [alias.name.partition(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots = [node.module.partition(".")[0]]
        else:
            continue
        for root in roots:
            if root not in _ALWAYS and root not in guarded and not _is_stdlib(root):
                unguarded.append((node.lineno, root))
    return unguarded


def _is_stdlib(name: str) -> bool:
    import sys

    return name in sys.stdlib_module_names or name == "__future__"


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py"))


def test_the_scan_finds_the_test_modules() -> None:
    assert len(_test_modules()) > 50


@pytest.mark.parametrize("path", _test_modules(), ids=lambda p: str(p.relative_to(TESTS)))
def test_optional_packages_are_imported_after_their_skip(path: Path) -> None:
    unguarded = _unguarded_imports(path)
    assert not unguarded, (
        f"{path.name} imports {', '.join(f'{root} (line {line})' for line, root in unguarded)} at module "
        "level without a pytest.importorskip of it before: a smaller install errors instead of skipping"
    )


def test_the_scan_catches_an_unguarded_import(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(
        'import pytest\nimport torch\nzarr = pytest.importorskip("zarr")\nimport zarr.storage\n'
    )
    assert _unguarded_imports(module) == [(2, "torch")]
