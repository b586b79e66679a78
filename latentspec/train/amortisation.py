"""The amortisation gap: how well, and how fast, a code is found by the encoder (one forward
pass), by optimisation (an `optimize:` entry, GLO's inversion), and by optimisation started from
the encoder's code. Reported by `latentspec eval` for every `optimize:` entry over data fields
whose variable an encoder also produces.

The optimisation is the runtime's loop (Adam on the code, projection after each step; see
docs/bundle-format.md) with one start, in PyTorch.
"""

from __future__ import annotations

import time

import torch

from latentspec.nn.modules import frozen, project_rows
from latentspec.spec import Spec
from latentspec.spec._evalkeys import amortised_encoder, reconstruction_of

BETAS = (0.9, 0.999)


_encoder = amortised_encoder  # torch-free: the eval declarations (spec._evalkeys) use it too


class _Inversion:
    """One `optimize:` entry: its graph, terms, and the reconstruction it compares with the data."""

    def __init__(self, spec: Spec, model, name: str) -> None:
        from latentspec.run import build_term, term_weight

        self.entry = e = spec.export[name]
        self.model = model
        self.gm, self.plan = model.entry(name)
        self.variable = e.optimize
        self.latent = spec.latents[self.variable]
        self.terms = [(t, build_term(spec, t).eval(), term_weight(t, 10**9, 1e9)) for t in e.terms]
        self.data = e.inputs[0]
        self.recon = reconstruction_of(spec, e)

    def outputs(self, z: torch.Tensor, batch: dict) -> dict:
        args = [z if ph.kind == "variable" else batch[ph.tensor] for ph in self.plan.placeholders]
        return self.gm(*args)

    def loss(self, outs: dict) -> torch.Tensor:
        """The entry's objective, the batch mean of its per-example losses."""
        return sum(w * term(*(outs[x] for x in t.inputs)) for t, term, w in self.terms)

    def start(self, n: int) -> torch.Tensor:
        if self.latent.table:
            mean = self.model.module_of(self.variable).weight.detach().float().mean(0, keepdim=True)
            return project_rows(mean, self.latent.project, self.latent.radius).repeat(n, 1)
        return torch.zeros(n, self.latent.dim)

    def optimize(self, z: torch.Tensor, batch: dict, steps: int | None = None) -> torch.Tensor:
        steps = self.entry.steps if steps is None else steps
        z = z.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=self.entry.lr, betas=BETAS, eps=1e-8)
        n = len(z)
        with frozen(self.model), torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                (self.loss(self.outputs(z, batch)) * n).backward()  # the summed per-example loss
                opt.step()
                with torch.no_grad():
                    z.copy_(project_rows(z, self.latent.project, self.latent.radius))
        return z.detach()

    @torch.no_grad()
    def quality(self, z: torch.Tensor, batch: dict) -> dict:
        outs = self.outputs(z, batch)
        out = {"loss": float(self.loss(outs))}
        if self.recon is not None:
            out["mse"] = float(((outs[self.recon] - batch[self.data]) ** 2).mean())
        return out


def spread_rows(size: int, examples: int) -> torch.Tensor:
    """``min(examples, size)`` row indices spread evenly over ``size`` rows: a split may be
    sorted by label (mnist5k's first 200 test rows are all 0s and 1s)."""
    return torch.linspace(0, size - 1, min(examples, size)).long()


def amortisation_report(spec: Spec, model, test, *, examples: int = 200) -> dict:
    """Per `optimize:` entry with a matching encoder: loss, reconstruction MSE and milliseconds
    per example for encode, optimize and encode→optimize, on ``examples`` test rows spread
    evenly over the split (:func:`spread_rows`)."""
    report = {}
    for name, e in spec.export.items():
        if not e.optimize or any(t not in spec.data.fields for t in e.inputs):
            continue  # entries with inputs of their own (an inpainting mask) have no test data
        enc = _encoder(spec, e.optimize, e.inputs)
        if enc is None:
            continue
        inv = _Inversion(spec, model, name)
        code, enc_inputs = enc
        encode, _ = model.graph([code], list(enc_inputs), training=False)
        rows = spread_rows(len(test.fields[e.inputs[0]]), examples)
        batch = {f: t[rows] for f, t in test.fields.items() if f in e.inputs}
        n = len(next(iter(batch.values())))

        t0 = time.perf_counter()
        with torch.no_grad():
            z_enc = encode(*(batch[f] for f in enc_inputs)).flatten(1)
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        z_opt = inv.optimize(inv.start(n), batch)
        t_opt = time.perf_counter() - t0
        t0 = time.perf_counter()
        with torch.no_grad():
            z_start = encode(*(batch[f] for f in enc_inputs)).flatten(1)
        z_both = inv.optimize(z_start, batch)
        t_both = time.perf_counter() - t0

        report[name] = {
            "variable": e.optimize,
            "encoder": code,
            "reconstruction": inv.recon,
            "examples": n,
            "steps": int(e.steps),
            "encode": {**inv.quality(z_enc, batch), "ms_per_example": 1000.0 * t_enc / n},
            "optimize": {**inv.quality(z_opt, batch), "ms_per_example": 1000.0 * t_opt / n},
            "encode_optimize": {**inv.quality(z_both, batch), "ms_per_example": 1000.0 * t_both / n},
        }
    return report
