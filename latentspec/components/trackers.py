"""Experiment-tracking sinks (`train.track`). Descriptors only: the sinks live in
``latentspec.track`` and import their library (an optional extra) when a run opens them."""

from __future__ import annotations

from latentspec.components._kinds import TRACKERS
from latentspec.components._registry import Component, Param


@TRACKERS.register("tensorboard")
class TensorBoardTracker(Component):
    """TensorBoard event files: scalars, sample grids, the spec as text, HParams (`latentspec[tensorboard]`)."""

    extra = "tensorboard"
    params = (
        Param("dir", "str", "tensorboard", "the event-file folder, relative to the run directory"),
        Param("images", "bool", True, "log the per-epoch sample and reconstruction grids"),
    )


@TRACKERS.register("mlflow")
class MlflowTracker(Component):
    """An MLflow run: params (flattened spec paths), metrics, grids, spec, eval, bundle (`latentspec[mlflow]`)."""

    extra = "mlflow"
    params = (
        Param(
            "uri",
            "str",
            None,
            "tracking URI; default $MLFLOW_TRACKING_URI, else a local store in ./mlruns (sqlite:///mlruns/mlflow.db)",
        ),
        Param("experiment", "str", None, "the MLflow experiment; default the spec's name"),
        Param("images", "bool", True, "log the per-epoch sample and reconstruction grids as artifacts"),
    )
