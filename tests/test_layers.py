"""The layers (pyproject.toml [tool.importlinter]): `lint-imports` keeps every contract, and each
contract fails when a module breaks it. The breaking modules are written into a copy of the
packages, so the working tree is never touched. The layer diagram is in the README (Layers).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter brings tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def contracts() -> dict[str, dict]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        config = tomllib.load(f)["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def lint(cwd: Path, *contract_ids: str) -> subprocess.CompletedProcess:
    """`lint-imports` on the packages found first on PYTHONPATH=cwd, with cwd's pyproject.toml."""
    args = [LINT, "--no-cache", "--no-logo", *(a for c in contract_ids for a in ("--contract", c))]
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "1000"}  # one line per contract
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    res.stdout = " ".join(res.stdout.split())
    return res


def test_lint_imports_keeps_every_contract():
    res = lint(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    for c in contracts().values():
        assert f"{c['name']} KEPT" in res.stdout


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the two packages' Python files and the contracts; it keeps every contract."""
    dst = tmp_path_factory.mktemp("layers")
    keep = shutil.ignore_patterns("__pycache__", "*.npz", "*.json", "*.png", "static")
    shutil.copytree(ROOT / "latentspec", dst / "latentspec", ignore=keep)
    shutil.copytree(ROOT / "runtime" / "latentspec_runtime", dst / "latentspec_runtime", ignore=keep)
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    res = lint(dst)
    assert res.returncode == 0, res.stdout + res.stderr
    return dst


# (contract id, module written into the copy, its source): each breaks exactly that contract,
# with an import inside a function (lazy imports count) or through another package.
BREAKERS = [
    ("runtime-standalone", "latentspec_runtime/_breaks.py", "def f():\n    import latentspec.spec\n"),
    ("torch-free-declarations", "latentspec/graph/_breaks.py", "def f():\n    import torch\n"),
    (
        "torch-free-declarations",
        "latentspec/spec/_breaks.py",
        "def f():\n    from latentspec.compiler import compile_spec\n",
    ),
    ("torch-free-declarations", "latentspec/components/_breaks.py", "def build():\n    from torch import nn\n"),
    (
        "compiler-below-train-export",
        "latentspec/compiler/_breaks.py",
        "def f():\n    from latentspec.train import trainer\n",
    ),
    ("compiler-below-train-export", "latentspec/compiler/_breaks.py", "def f():\n    import latentspec.export\n"),
    ("compiler-without-data", "latentspec/compiler/_breaks.py", "def f():\n    import latentspec.data.pipeline\n"),
    ("train-without-export", "latentspec/train/_breaks.py", "def f():\n    from latentspec.export import export_run\n"),
    (
        "export-without-train",
        "latentspec/export/_breaks.py",
        "def f():\n    from latentspec.train.evaluate import codes\n",
    ),
    ("run-below-train-and-export", "latentspec/run/_breaks.py", "def f():\n    from latentspec.train import rundir\n"),
    ("run-below-train-and-export", "latentspec/run/_breaks.py", "def f():\n    import latentspec.export\n"),
    ("train-below-tracking", "latentspec/train/_breaks.py", "def f():\n    from latentspec.sweep import run_sweep\n"),
    ("train-below-tracking", "latentspec/train/_breaks.py", "def f():\n    import latentspec.track\n"),
    ("data-below-train", "latentspec/data/_breaks.py", "def f():\n    from latentspec.train.trainer import train\n"),
    ("components-below-data", "latentspec/components/_breaks.py", "def f():\n    import latentspec.data.datasets\n"),
]


def test_every_contract_has_a_breaking_module():
    assert {c for c, _, _ in BREAKERS} == set(contracts())


@pytest.mark.parametrize(("contract", "module", "source"), BREAKERS, ids=[f"{c}:{m}" for c, m, _ in BREAKERS])
def test_a_module_that_breaks_a_contract_fails_lint_imports(tree, contract, module, source):
    path = tree / module
    path.write_text(source)
    try:
        res = lint(tree, contract)
    finally:
        path.unlink()
    name = contracts()[contract]["name"]
    assert res.returncode != 0, res.stdout
    assert f"{name} BROKEN" in res.stdout
    assert module.removesuffix(".py").replace("/", ".") in res.stdout  # names the offending module


def test_components_reach_torch_only_inside_build():
    """The one import the torch-free contract ignores (components -> latentspec.nn) is made
    lazily, in ``build``: declaring and validating components never runs it."""
    allowed = {tuple(s.split(" -> ")) for s in contracts()["torch-free-declarations"]["ignore_imports"]}
    seen = set()
    for path in sorted((ROOT / "latentspec" / "components").glob("*.py")):
        module = "latentspec.components." + path.stem
        tree = ast.parse(path.read_text(), str(path))
        in_build = set()
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef) and fn.name == "build":
                in_build |= {id(n) for n in ast.walk(fn)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name == "latentspec.nn" or name.startswith(("latentspec.nn.", "torch")):
                    where = f"{path.name}:{node.lineno}"
                    assert id(node) in in_build, f"{where}: {name} imported outside a `build` method"
                    if name.startswith("latentspec.nn."):
                        assert (module, name) in allowed, f"{where}: {module} -> {name} is not a declared exception"
                        seen.add((module, name))
    assert seen == allowed, f"ignore_imports entries no component uses: {sorted(allowed - seen)}"
