"""Refinement per iteration: the objective terms on a `refine` entry's output after 0, 1, …,
default + 1 trips of its loop (the feedback loop's pose error as it is refined). Reported by
`latentspec eval` whenever ``spec._evalkeys.refinement_of`` finds such an entry and terms.

It runs the entry's own graph, the one exported (its trip count an input), so the runtime's
``refine(x, iterations=k)`` gives the same numbers.
"""

from __future__ import annotations

import torch

from latentspec.data.pipeline import SplitData
from latentspec.spec import Spec
from latentspec.spec._evalkeys import refinement_of


@torch.no_grad()
def refinement_report(spec: Spec, model, data: SplitData, device: torch.device) -> dict | None:
    """{"entry": name, term: {"0": value, "1": value, …}} over ``data``; None when the spec has
    no such entry (see :func:`latentspec.spec._evalkeys.refinement_of`)."""
    from latentspec.run import build_term

    r = refinement_of(spec)
    if r is None:
        return None
    was = model.training
    model.eval()
    e = spec.export[r.entry]
    gm, plan = model.graph([r.output], e.inputs, training=False, loop_steps_input=True)
    terms = {name: build_term(spec, spec.objective[name]).to(device).eval() for name in r.terms}
    sums = {name: [0.0] * len(r.iterations) for name in r.terms}
    count = 0
    for batch in data.batches(spec, 0, shuffle=False, batch=spec.data.test_batch):
        n = len(next(iter(batch.values())))
        for i, k in enumerate(r.iterations):
            steps = torch.tensor(k, dtype=torch.int64)
            args = [steps if ph.kind == "steps" else batch[ph.tensor].to(device) for ph in plan.placeholders]
            out = gm(*args)
            for name, term in terms.items():
                ins = [out if t == r.output else batch[t].to(device) for t in spec.objective[name].inputs]
                sums[name][i] += float(term(*ins)) * n
        count += n
    model.train(was)
    return {
        "entry": r.entry,
        **{name: {str(k): v / max(count, 1) for k, v in zip(r.iterations, s)} for name, s in sums.items()},
    }
