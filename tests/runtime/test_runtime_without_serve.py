"""The runtime's CLI works without the `serve` extra: only `serve` itself needs FastAPI."""

from __future__ import annotations

import subprocess
import sys

# a meta-path finder that refuses the serve extra's packages, as on an install without it
BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('fastapi', 'uvicorn', 'prometheus_client', 'starlette', 'multipart'):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
from latentspec_runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_cli_runs_without_fastapi(tmp_path):
    res = subprocess.run([sys.executable, "-c", BLOCK, "--help"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "serve" in res.stdout and "sample" in res.stdout
