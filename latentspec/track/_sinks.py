"""The sinks: TensorBoard event files and MLflow runs. Each imports its library (an extra) on open."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Any

from latentspec._extras import require


class Sink:
    """What a tracking sink receives. ``state`` is what the run directory keeps for it
    (``track.json``), so a resumed run, `latentspec eval` or `export` reach the same place."""

    name = ""

    def start(self, *, spec_text: str, hparams: dict[str, Any], metrics: list[str]) -> None: ...

    def scalars(self, values: dict[str, float], step: int) -> None: ...

    def image(self, tag: str, path: str, step: int) -> None: ...

    def artifact(self, path: str, name: str) -> None: ...

    def close(self, status: str = "FINISHED") -> None: ...

    def state(self) -> dict:
        return {}


class TensorBoardSink(Sink):
    """Events under ``RUN/<dir>``: scalars, images, the spec as text and the HParams plugin's
    session (hyperparameters = flattened spec paths)."""

    name = "tensorboard"

    def __init__(self, run: str, cfg: dict, *, purge_step: int | None = None) -> None:
        require("tensorboard", "tensorboard", "tracking with TensorBoard")
        from torch.utils.tensorboard import SummaryWriter

        self.images = cfg.get("images", True)
        self.logdir = os.path.join(run, cfg.get("dir") or "tensorboard")
        # purge_step drops events a killed run wrote after its last checkpoint (TensorBoard
        # discards them when it reads the new file)
        self.writer = SummaryWriter(self.logdir, purge_step=purge_step)

    def start(self, *, spec_text: str, hparams: dict[str, Any], metrics: list[str]) -> None:
        from torch.utils.tensorboard.summary import hparams as hp_summary

        self.writer.add_text("spec", "\n".join("    " + line for line in spec_text.splitlines()), 0)
        exp, ssi, sei = hp_summary(hparams, dict.fromkeys(metrics, 0.0))
        fw = self.writer._get_file_writer()
        fw.add_summary(exp)
        fw.add_summary(ssi)
        self._session_end = sei

    def scalars(self, values: dict[str, float], step: int) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def image(self, tag: str, path: str, step: int) -> None:
        if not self.images:
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
        self.writer.add_image(tag, pixels, step, dataformats="HWC")

    def artifact(self, path: str, name: str) -> None:
        self.writer.add_text(name, f"written to `{os.path.abspath(path)}`", 0)

    def close(self, status: str = "FINISHED") -> None:
        sei = getattr(self, "_session_end", None)
        if sei is not None:
            self.writer._get_file_writer().add_summary(sei)
        self.writer.close()

    def state(self) -> dict:
        return {"logdir": os.path.abspath(self.logdir)}


@contextlib.contextmanager
def _quiet():
    # MLflow's SQL store trips SQLAlchemy deprecation warnings (errors under -W error) and logs
    # its table migrations at INFO
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def default_mlflow_uri() -> str:
    """$MLFLOW_TRACKING_URI, else a local SQLite store in ./mlruns (artifacts beside it), as
    an absolute path: later commands from other folders reach the same store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{os.path.abspath(os.path.join('mlruns', 'mlflow.db'))}"


class MlflowSink(Sink):
    """One MLflow run per run directory: params, metrics with steps, grids and the bundle as artifacts."""

    name = "mlflow"

    def __init__(self, run: str, cfg: dict, *, spec_name: str, state: dict | None = None) -> None:
        require("mlflow", "mlflow", "tracking with MLflow")
        from mlflow.tracking import MlflowClient

        self.images = cfg.get("images", True)
        self.uri = cfg.get("uri") or (state or {}).get("uri") or default_mlflow_uri()
        artifacts = None
        if self.uri.startswith("sqlite:///"):
            folder = os.path.dirname(self.uri[len("sqlite:///") :]) or "."
            os.makedirs(folder, exist_ok=True)
            artifacts = os.path.abspath(folder)  # artifacts beside the database, wherever the command runs
        with _quiet():
            self.client = MlflowClient(self.uri)
            if state and state.get("run_id") and state.get("uri") == self.uri:
                self.run_id = state["run_id"]
                self.client.update_run(self.run_id, status="RUNNING")
            else:
                name = cfg.get("experiment") or spec_name
                exp = self.client.get_experiment_by_name(name)
                exp_id = (
                    exp.experiment_id
                    if exp is not None
                    else self.client.create_experiment(
                        name, artifact_location=os.path.join(artifacts, name) if artifacts else None
                    )
                )
                self.run_id = self.client.create_run(
                    exp_id, run_name=os.path.basename(os.path.abspath(run)), tags={"latentspec.run": run}
                ).info.run_id

    def start(self, *, spec_text: str, hparams: dict[str, Any], metrics: list[str]) -> None:
        from mlflow.entities import Param

        with _quiet():
            have = self.client.get_run(self.run_id).data.params
            params = [Param(k, str(v)[:6000]) for k, v in hparams.items() if k not in have]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])
            self.client.log_text(self.run_id, spec_text, "spec.yaml")

    def scalars(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        with _quiet():
            metrics = [Metric(k, v, now, step) for k, v in values.items()]
            for i in range(0, len(metrics), 1000):
                self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def image(self, tag: str, path: str, step: int) -> None:
        if self.images:
            with _quiet():
                self.client.log_artifact(self.run_id, path, tag)

    def artifact(self, path: str, name: str) -> None:
        with _quiet():
            if os.path.isdir(path):
                self.client.log_artifacts(self.run_id, path, name)
            else:
                self.client.log_artifact(self.run_id, path, name)

    def close(self, status: str = "FINISHED") -> None:
        with _quiet():
            self.client.set_terminated(self.run_id, status)

    def state(self) -> dict:
        return {"uri": self.uri, "run_id": self.run_id}
