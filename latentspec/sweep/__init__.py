"""`latentspec sweep`: hyperparameter search over spec values on Optuna (`latentspec[sweep]`).

The search space is the spec's `sweep:` section (or `--param`); each trial trains ordinary run
directories (one per seed), evaluates them (`eval.json`) and reports the mean of the metric.
The study lives in SQLite in the sweep folder unless ``--storage`` names a shared database;
any number of processes (``--worker``) can share one study.
"""

from latentspec.sweep._report import write_reports
from latentspec.sweep._run import SweepOptions, run_sweep

__all__ = ["SweepOptions", "run_sweep", "write_reports"]
