"""Silent-collapse checks run after every training epoch.

Two symptoms of a model that stopped learning, each reported with its term and epoch (a
``warning:`` line on stderr and a ``{"kind": "warning", "check": "collapse", ...}`` row in
``metrics.jsonl``):

- **constant**: the reconstruction a term scores (its ``reconstruction`` role) is the same for
  every example of the evaluation batch (its spread over the batch is under 5% of the target's)
  and is not growing out of it (the spread did not double since the previous epoch; a freshly
  initialised decoder is nearly constant too). Checked from a stage's second epoch;
- **trivial**: the term's value (the weighted sum of the terms on the same reconstruction and
  target) on the evaluation batch is flat and no better than that of a constant
  predictor: the mean training target (the per-element median too, which is the better constant
  under an L1 loss), fed through the same term, as logits ``logit(clip(mean))`` when the term
  is a Bernoulli likelihood.

The evaluation batch is a fixed set of evenly spaced rows of the test split, or of the training
split for terms computed from a latent table (GLO), whose codes exist only for training rows.
The trivial check starts at a stage's second epoch and needs the loss to be flat too (it improved
by less than the margin over the last epoch): a model still on its way down from its
initialisation is not stuck.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch

from latentspec.spec import Spec

#: the reconstruction counts as constant when its spread over the batch is below this
#: fraction of the target's spread
CONSTANT_RATIO = 0.05
#: the term is stuck when it is not at least this fraction (of the trivial predictor's value)
#: below the trivial predictor's value, and improved by less than that over the last epoch
TRIVIAL_MARGIN = 0.02
ROWS = 256
EPS = 1e-6


def checked_terms(spec: Spec, names) -> list[str]:
    """Terms with a reconstruction of a float data field (the ones a constant can be compared with)."""
    out = []
    for name in names:
        t = spec.objective[name]
        recon, target = t.role("reconstruction"), t.role("target")
        if recon is None or target not in spec.data.fields:
            continue
        info = spec.infos.get(target)
        if info is not None and info.dtype == "float32":
            out.append(name)
    return out


def spaced(size: int, n: int) -> np.ndarray:
    """``min(n, size)`` evenly spaced row numbers of ``size`` rows (splits may be sorted by class)."""
    return np.linspace(0, size - 1, min(n, size)).round().astype(np.int64)


def eval_rows(data, n: int = ROWS, block: int | None = None) -> dict[str, torch.Tensor]:
    """``n`` evenly spaced rows of every field of ``data`` (splits may be sorted by class); with
    ``block`` (a fixed-factor sampler's, :func:`~latentspec.data.pipeline.block_size`) evenly
    spaced whole blocks instead, enough to hold ``n`` rows (the split keeps its blocks whole)."""
    out = {}
    for names in data.groups.values():
        size = len(data.fields[names[0]])
        if block is not None and size >= block:
            blocks = size // block
            starts = np.linspace(0, blocks - 1, min(blocks, -(-n // block))).round().astype(np.int64) * block
            idx = torch.from_numpy((starts[:, None] + np.arange(block)).reshape(-1))
        else:
            idx = torch.from_numpy(spaced(size, n))
        for f in names:
            out[f] = data.fields[f][idx]
    k = min(len(v) for v in out.values())
    return {f: v[:k] for f, v in out.items()}


def shared_rows(trainer, data) -> tuple[np.ndarray, set[str]] | None:
    """The row numbers of :func:`eval_rows` and the tensors the collapse check reads, when the
    test evaluation can hand it its outputs on them (one group of fields, no fixed-factor
    blocks); else None."""
    from latentspec.data.pipeline import block_size

    spec = trainer.spec
    if len(data.groups) != 1 or block_size(spec) is not None:
        return None
    names = {x for n in checked_terms(spec, spec.objective) for x in spec.objective[n].inputs}
    return spaced(len(data), ROWS), names


def forward_rows(gm, args, batch: dict[str, torch.Tensor], block: int | None) -> dict[str, torch.Tensor]:
    """``gm(*args(batch))``, or with ``block`` one fixed-factor block of ``batch`` at a time, the
    outputs concatenated: a training graph with ``clamp_latents`` reads its whole batch, so the
    blocks of :func:`eval_rows` must not be mixed."""
    n = len(next(iter(batch.values())))
    if block is None or n <= block:
        return gm(*args(batch))
    parts = [gm(*args({f: v[i : i + block] for f, v in batch.items()})) for i in range(0, n, block)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def constant_predictors(spec: Spec, name: str, train_target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The constant predictions a model must beat, one example each, in the term's own units
    (logits for a Bernoulli likelihood)."""
    t = spec.objective[name]
    x = train_target.float()
    out = {"mean image": x.mean(0, keepdim=True), "median image": x.median(0, keepdim=True).values}
    if t.distribution == "bernoulli":
        out = {k: torch.logit(v.clamp(EPS, 1 - EPS)) for k, v in out.items()}
    return out


def spread(x: torch.Tensor) -> float:
    """Mean over elements of the standard deviation over the batch."""
    return float(x.flatten(1).float().std(0).mean()) if len(x) > 1 else 0.0


def _restore(modes: dict) -> None:
    for m, mode in modes.items():
        m.training = mode


class CollapseCheck:
    """The collapse checks of one trainer. Terms that score the same reconstruction of the same
    target (a pixel loss and a pyramid loss on one output) are checked together, by their weighted
    sum: one of them alone may rightly trade off against the others."""

    def __init__(self, trainer) -> None:
        from latentspec.data.pipeline import block_size
        from latentspec.train.trainer import held_out_terms

        self.trainer = trainer
        spec = trainer.spec
        self.groups: dict[tuple[str, str], list[str]] = {}  # (reconstruction, target) -> terms
        for name in checked_terms(spec, spec.objective):
            t = spec.objective[name]
            self.groups.setdefault((t.role("reconstruction"), t.role("target")), []).append(name)
        held = set(held_out_terms(spec, spec.objective))
        test = trainer.test_data
        self.split = {
            key: ("test" if test is not None and all(n in held for n in names) else "train")
            for key, names in self.groups.items()
        }
        self.block = block_size(spec)
        self.rows = {
            s: eval_rows(trainer.test_data if s == "test" else trainer.train_data, block=self.block)
            for s in set(self.split.values())
        }
        self.previous: dict[tuple, float] = {}  # (stage, recon, target) -> last epoch's value
        self.previous_spread: dict[tuple, float] = {}  # ... and its reconstruction's spread
        self.constants: dict[str, dict[str, torch.Tensor]] = {}  # term -> its constant predictors
        self.target_spread: dict[tuple[str, str], float] = {}  # (split, target) -> its spread
        self.baselines: dict[tuple, tuple[str, float]] = {}  # (terms, weights) -> _baseline's answer

    @torch.no_grad()
    def check(self, stage, epoch: int) -> list[dict]:
        """The warnings for the terms ``stage`` trains, at the end of its ``epoch`` (1-based)."""
        from latentspec.train.trainer import batch_args

        tr, spec = self.trainer, self.trainer.spec
        groups = {k: [n for n in names if n in stage.terms] for k, names in self.groups.items()}
        groups = {k: names for k, names in groups.items() if names}
        if not groups:
            return []
        model = tr.model
        modes = {m: m.training for m in model.modules()}
        model.eval()
        rows = []
        try:
            for split in sorted({self.split[k] for k in groups}):
                mine = {k: names for k, names in groups.items() if self.split[k] == split}
                batch = self.rows[split]
                needed = list(
                    dict.fromkeys(x for names in mine.values() for n in names for x in spec.objective[n].inputs)
                )
                outs = self._evaluated(split, needed)
                if outs is None:
                    gm, plan = model.graph(needed, training=True)
                    g = torch.Generator().manual_seed((spec.seed + 7919) % 2**64)
                    outs = forward_rows(
                        gm, lambda b, plan=plan, g=g: batch_args(model, plan, b, g, tr.device), batch, self.block
                    )
                for key, names in mine.items():
                    rows += self._check_group(stage, epoch, key, names, outs, split)
        finally:
            _restore(modes)
        return rows

    def _evaluated(self, split: str, needed: list[str]) -> dict | None:
        """This step's test evaluation's outputs on the check's rows, when it kept them all."""
        shared = self.trainer._eval_outputs
        if split != "test" or shared is None or shared[0] != self.trainer.state["step"]:
            return None
        outs, rows = shared[1], len(next(iter(self.rows[split].values())))
        return outs if all(x in outs and len(outs[x]) == rows for x in needed) else None

    def _value(self, names: list[str], outs: dict, epoch: int, replace: dict | None = None) -> float:
        """The weighted sum of ``names`` on ``outs``; ``replace``: term -> its reconstruction input."""
        from latentspec.run import term_weight

        spec, total = self.trainer.spec, 0.0
        for name in names:
            t = spec.objective[name]
            recon = t.role("reconstruction")
            args = [replace[name] if replace and x == recon else outs[x] for x in t.inputs]
            total += term_weight(t, self.trainer.state["step"], epoch) * float(self.trainer.terms[name](*args))
        return total

    def _constants(self, name: str, target: str) -> dict[str, torch.Tensor]:
        """:func:`constant_predictors` of a term, computed once: the training data is fixed."""
        if name not in self.constants:
            self.constants[name] = constant_predictors(self.trainer.spec, name, self.trainer.train_data.fields[target])
        return self.constants[name]

    def _baseline(self, names: list[str], outs: dict, epoch: int) -> tuple[str, float]:
        """(which constant, the weighted sum of ``names`` when every example gets it); computed once
        while the terms read nothing of the model but the reconstruction and their weights stay."""
        from latentspec.run import term_weight

        spec, step = self.trainer.spec, self.trainer.state["step"]
        fixed = all(
            x in spec.data.fields or x == spec.objective[n].role("reconstruction")
            for n in names
            for x in spec.objective[n].inputs
        )
        key = (tuple(names), tuple(term_weight(spec.objective[n], step, epoch) for n in names))
        if fixed and key in self.baselines:
            return self.baselines[key]
        found = self._constant_baseline(names, outs, epoch)
        if fixed:
            self.baselines[key] = found
        return found

    def _constant_baseline(self, names: list[str], outs: dict, epoch: int) -> tuple[str, float]:
        spec = self.trainer.spec
        recon, target = spec.objective[names[0]].role("reconstruction"), spec.objective[names[0]].role("target")
        r = outs[recon]
        consts = {n: self._constants(n, target) for n in names}
        values = {}
        for label in consts[names[0]]:
            replace = {
                n: c[label].to(r.device, r.dtype).reshape(1, *r.shape[1:]).expand_as(r) for n, c in consts.items()
            }
            values[label] = self._value(names, outs, epoch, replace)
        return min(values.items(), key=lambda kv: kv[1])

    def _check_group(
        self, stage, epoch: int, key: tuple[str, str], names: list[str], outs: dict, split: str
    ) -> list[dict]:
        spec = self.trainer.spec
        recon, target = key
        pred = outs[recon]
        if any(spec.objective[n].distribution == "bernoulli" for n in names):
            pred = torch.sigmoid(pred)
        found = []
        if (split, target) not in self.target_spread:  # the rows are the same every epoch
            self.target_spread[(split, target)] = spread(outs[target])
        want, got = self.target_spread[(split, target)], spread(pred)
        before = self.previous_spread.get((stage.name, *key))
        self.previous_spread[(stage.name, *key)] = got
        # constant, and not on its way out of it (a freshly initialised decoder is nearly constant
        # too, but its spread grows from epoch to epoch)
        if want > 0 and got < CONSTANT_RATIO * want and before is not None and got <= 2 * before + 1e-3 * want:
            found.append(
                (
                    "constant",
                    f"'{recon}' is the same for every example (spread over the batch {got:.3g}, the data's {want:.3g})",
                    {"spread": got, "target_spread": want},
                )
            )
        value = self._value(names, outs, epoch)
        previous = self.previous.get((stage.name, *key))
        self.previous[(stage.name, *key)] = value
        if previous is not None and math.isfinite(value):
            label, base = self._baseline(names, outs, epoch)
            margin = TRIVIAL_MARGIN * abs(base)
            if value >= base - margin and previous - value < margin:
                found.append(
                    (
                        "trivial",
                        f"{value:.4g} on {len(pred)} {split} rows (after {previous:.4g} an epoch earlier) is no "
                        f"better than predicting the {label} of the training data for every example ({base:.4g})",
                        {"value": value, "previous": previous, "baseline": base, "baseline_of": label},
                    )
                )
        what_terms = " + ".join(f"'{n}'" for n in names)
        rows = []
        for what, text, extra in found:
            rows.append(
                {
                    "kind": "warning",
                    "check": "collapse",
                    "what": what,
                    "term": " + ".join(names),
                    "stage": stage.name,
                    "epoch": epoch,
                    "step": self.trainer.state["step"],
                    "split": split,
                    **extra,
                    "message": f"stage {stage.name}, epoch {epoch}: {'term' if len(names) == 1 else 'terms'} "
                    f"{what_terms}: {text}; the model may have collapsed (try the learning rates, the loss "
                    "weights or the output activation)",
                }
            )
        return rows


def check_epoch(trainer, stage, epoch: int) -> list[dict]:
    """Run the collapse checks after ``epoch`` of ``stage``; log and print what they find."""
    checker = getattr(trainer, "_collapse", None)
    if checker is None:
        checker = trainer._collapse = CollapseCheck(trainer)
    rows = checker.check(stage, epoch)
    for row in rows:
        trainer._log(row)
        print(f"warning: {row['message']}", file=sys.stderr)
    return rows
