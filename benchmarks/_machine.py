"""What every benchmark JSON records about where and how it ran, and the atomic JSON write."""

from __future__ import annotations

import datetime
import json
import os
import platform
from typing import Any

from latentspec_runtime._atomic import write_text


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The machine, the library versions and the load average (at start, and now when
    ``before`` is the start's record): timings on a loaded machine are only comparable as
    ratios measured in the same run."""
    import numpy
    import onnxruntime
    import torch

    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_start": load,
    }
    if before is not None:
        info["load_average_start"] = before["load_average_start"]
        info["when"] = before["when"]
        info["load_average_end"] = load
    return info


def write_result(path: str, result: dict[str, Any]) -> None:
    """Write ``result`` as JSON to ``path`` atomically, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text(path, json.dumps(result, indent=2) + "\n")
