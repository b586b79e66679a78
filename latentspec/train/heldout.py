"""A held-out metric for models whose codes are a latent table (GLO).

Their training terms read codes that exist only for training rows, so no term can be evaluated
on the test split directly. The `invert` entry fits a fresh code to each new row instead (the
runtime's optimisation, run here in PyTorch); its objective after fitting, averaged over a fixed
set of test rows, is the run's held-out metric (``test.invert`` in ``metrics.jsonl`` and
``eval.json``), and it is what the `best` checkpoint is chosen by.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from latentspec.spec import Spec
from latentspec.spec._evalkeys import held_out_invert, held_out_terms

#: test rows the inversion is measured on (evenly spaced over the split)
ROWS = 64
#: while training, a cheaper fit ranks the epochs for `best` (the same rows and steps every
#: epoch, so the ranking is fair); ``latentspec eval`` fits with the entry's own steps. The full
#: fit every epoch would cost several epochs of training (200 steps × 64 rows).
TRAINING_ROWS = 32
TRAINING_STEPS = 50


def evaluates(spec: Spec, terms: Iterable[str]) -> bool:
    """Whether ``terms`` have a held-out metric: one reads no latent table, or an `invert` entry fits them."""
    terms = tuple(terms)
    return bool(held_out_terms(spec, terms)) or held_out_invert(spec, terms) is not None


def inversion_metrics(
    spec: Spec,
    model,
    terms: Iterable[str],
    data,
    device: torch.device,
    *,
    rows: int = ROWS,
    steps: int | None = None,
) -> dict[str, float]:
    """{entry name: the `invert` entry's objective after fitting codes to ``rows`` rows of ``data``
    (with ``steps`` optimisation steps, default the entry's)}, empty when no term of ``terms``
    reads a latent table or the spec has no such entry."""
    from latentspec.train.amortisation import _Inversion
    from latentspec.train.collapse import eval_rows

    e = held_out_invert(spec, terms)
    if e is None:
        return {}
    batch = {f: v.to(device) for f, v in eval_rows(data, rows).items() if f in e.inputs}
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        inv = _Inversion(spec, model, e.name)
        inv.terms = [(t, term.to(device), w) for t, term, w in inv.terms]  # built on the CPU
        steps = e.steps if steps is None else min(steps, e.steps)
        z = inv.optimize(inv.start(len(next(iter(batch.values())))), batch, steps)
        with torch.no_grad():
            return {e.name: float(inv.loss(inv.outputs(z, batch)))}
    finally:
        for m, mode in modes.items():
            m.training = mode
