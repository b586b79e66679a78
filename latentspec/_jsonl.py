"""Reading a run's JSON-lines logs (``metrics.jsonl``) the one way every reader needs: a row cut
off by an interruption (the last line of a killed run) is skipped, not an error. Torch-free, so
the commands that only read logs (compare, track) start fast."""

from __future__ import annotations

import json


def read_rows(path: str) -> list[dict]:
    """Every complete row of the JSON-lines file ``path``, in order."""
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a row cut off by an interruption
                continue
    return rows
