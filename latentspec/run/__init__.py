"""A run directory, read back: its spec and trained model (``load_run``), the objective's terms
(``build_term``, ``term_weight``), the device they run on, the model's codes of a split
(``codes``) and its editing directions and factor calibration (``latentspec.run.directions``).

Below both ``latentspec.train`` (which writes runs) and ``latentspec.export`` (which reads
them), so exporting never imports the trainer.
"""

from latentspec.run._codes import code_tensors, codes, find_vae
from latentspec.run._load import load_run, resolve_device, table_sizes_of
from latentspec.run._terms import build_term, term_weight

__all__ = [
    "build_term",
    "code_tensors",
    "codes",
    "find_vae",
    "load_run",
    "resolve_device",
    "table_sizes_of",
    "term_weight",
]
