"""Project contracts: the README's two commands, CI running the README's test command, generated
docs in sync with the registries, the CLI help generated from them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from latentspec.components import ALL
from latentspec.registries import load_all

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, re.S)
    return [next(line for line in b.splitlines() if line and not line.startswith("#")) for b in blocks]


def test_readme_quick_start_is_two_commands():
    cmds = readme_commands()
    assert len(cmds) == 2
    main_job, tests = cmds
    assert main_job.startswith("pip install torch==2.13.0 && ")
    for step in ("latentspec train specs/vae_mnist.yaml", "latentspec export", "--verify", "latentspec-runtime sample"):
        assert step in main_job
    assert tests.startswith("pip install torch==2.13.0 && ") and "pytest" in tests
    assert "&& lint-imports &&" in tests  # the layers (tests/test_layers.py) hold before the tests run


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    assert readme_commands()[1] in ci.splitlines()
    assert os.access(os.path.join(ROOT, ".ci", "run"), os.X_OK)


def test_ci_names_only_files_that_exist():
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        words = f.read().split()
    named = {w.split("::")[0].strip("\"'`,;()") for w in words if w.strip("\"'`").startswith("tests/")}
    missing = sorted(p for p in named if not os.path.exists(os.path.join(ROOT, p)))
    assert not missing, f".ci/run names test files that do not exist: {missing}"


def test_component_docs_are_generated():
    load_all()
    with open(os.path.join(ROOT, "docs", "components.md")) as f:
        docs = f.read()
    expected = "".join(f"### {r.kind}s\n\n{r.doc}\n\n{r.docs_table()}\n\n" for r in ALL)
    assert docs == expected, "run `latentspec docs > docs/components.md`"


def test_cli_help_lists_the_registries():
    res = subprocess.run([sys.executable, "-m", "latentspec", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0
    load_all()
    for reg in ALL:
        for name in reg.names():
            assert name in res.stdout, name


def test_every_component_has_a_test_file():
    load_all()
    from latentspec.components import MODULES, OPS, TERMS

    have = set(os.listdir(os.path.join(ROOT, "tests", "components")))
    for reg, prefix in ((MODULES, "module"), (OPS, "op"), (TERMS, "term")):
        for name in reg.names():
            if name == "loop":  # compiled by the compiler; tested in tests/test_compiler.py
                continue
            assert f"test_{prefix}_{name}.py" in have, name
