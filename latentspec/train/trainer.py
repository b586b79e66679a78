"""Stage-by-stage training with exact resume, metrics and checkpoints."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from latentspec._finite import NonFiniteError
from latentspec.compiler import CompiledModel, compile_spec
from latentspec.data.pipeline import SplitData, table_sizes
from latentspec.errors import RunError
from latentspec.nn.optim import grad_norm_
from latentspec.run import build_term, resolve_device, term_weight
from latentspec.run import checkpoint as ckpt
from latentspec.spec import Spec, dump_resolved
from latentspec.spec._evalkeys import held_out_terms
from latentspec.spec._model import StageSpec
from latentspec.train import rundir
from latentspec.train.heldout import TRAINING_ROWS, TRAINING_STEPS, evaluates, inversion_metrics

# Checkpoints up to this size are copied and written on a background thread while the next
# epoch trains (the copy of a 1.3M-parameter VAE and its Adam moments takes ~3 ms; writing,
# hashing and fsyncing it ~20 ms). Larger ones (latent tables of millions of rows) are written
# in place, between epochs, rather than held twice in memory.
ASYNC_CHECKPOINT_BYTES = 256 * 2**20
# `checkpoint_every: 0` (auto): a checkpoint once the training since the last one took this many
# times what writing that one cost (≤ 2% of the time, losing at most ~50 write-times of training
# on a crash; see Trainer._checkpoint_due)
AUTO_CHECKPOINT_FACTOR = 50


def batch_args(model: CompiledModel, plan, batch: dict, generator: torch.Generator, device: torch.device) -> list:
    """The graph's positional inputs: batch fields, and noise drawn from ``generator``."""
    n = len(next(iter(batch.values())))
    noise = iter(model.draw_noise(plan, n, generator))
    if device.type == "cpu":  # no per-tensor .to() calls on the hot path
        return [next(noise) if ph.kind == "noise" else batch[ph.tensor] for ph in plan.placeholders]
    return [
        next(noise).to(device) if ph.kind == "noise" else batch[ph.tensor].to(device, non_blocking=True)
        for ph in plan.placeholders
    ]


@torch.no_grad()
def evaluate_terms(
    spec: Spec,
    model: CompiledModel,
    terms: dict,
    names,
    data: SplitData,
    device: torch.device,
    keep: tuple[np.ndarray, set[str], dict[str, torch.Tensor]] | None = None,
) -> dict[str, float]:
    """Mean of the named terms over ``data``, with noise from its own fixed generator (never
    the training generator, so evaluation does not change what training draws). ``keep``: (row
    numbers in ascending order, the outputs wanted, a dict to fill with them on those rows), so
    that the collapse check can read them instead of running the model again."""
    was = model.training
    model.eval()
    outs_needed = list(dict.fromkeys(t for name in names for t in spec.objective[name].inputs))
    gm, plan = model.graph(outs_needed, training=True)
    g = torch.Generator().manual_seed((spec.seed + 7919) % 2**64)
    sums: dict[str, float] = {}
    count = 0
    kept: list[dict[str, torch.Tensor]] = []
    for batch in data.batches(spec, 0, shuffle=False, batch=spec.data.test_batch):
        n = len(next(iter(batch.values())))
        outs = gm(*batch_args(model, plan, batch, g, device))
        for name in names:
            value = terms[name](*(outs[x] for x in spec.objective[name].inputs))
            sums[name] = sums.get(name, 0.0) + value.item() * n
        if keep is not None:  # unshuffled batches: this one holds rows count .. count + n - 1
            rows, wanted = keep[0], keep[1]
            sel = torch.from_numpy(rows[(rows >= count) & (rows < count + n)] - count)
            if len(sel):
                # outputs with one row per example (not, e.g., an IWAE's B·k samples)
                kept.append(
                    {
                        k: v[sel.to(v.device)]
                        for k, v in outs.items()
                        if k in wanted and torch.is_tensor(v) and v.ndim and len(v) == n
                    }
                )
        count += n
    if keep is not None and kept:
        common = [k for k in kept[0] if all(k in part for part in kept)]
        keep[2].update({k: torch.cat([part[k] for part in kept]) for k in common})
    model.train(was)
    return {k: v / max(count, 1) for k, v in sums.items()}


class Distributed:
    """torchrun support: rank, world size, and gradient averaging through DDP."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owned = self.world > 1 and not torch.distributed.is_initialized()
        if self.owned:
            torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def close(self, barrier: bool = True) -> None:
        """Destroy the process group this object started, after a barrier (``barrier``). Left to
        interpreter exit, or with one rank leaving while another still communicates, a rank
        could abort ("terminate called without an active exception"; about 1 run in 4 here)."""
        if self.owned and torch.distributed.is_initialized():
            try:
                if barrier:  # after a normal finish: no rank leaves while another still communicates
                    torch.distributed.barrier()
            finally:
                torch.distributed.destroy_process_group()
        self.owned = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, x: float) -> float:
        if self.world == 1:
            return x
        t = torch.tensor([x], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return float(t) / self.world


class _StageForward(torch.nn.Module):
    """The stage's training graph as a module DDP can wrap (it owns the trainable parameters)."""

    def __init__(self, model: CompiledModel, gm: torch.fx.GraphModule) -> None:
        super().__init__()
        self.model = model
        self._gm = [gm]

    def forward(self, *args):
        return self._gm[0](*args)


class Callback:
    """Hooks into training (tracking sinks, sweep pruning). ``on_row`` sees every
    ``metrics.jsonl`` row as it is written; ``on_epoch`` runs after the epoch's sample grid and
    after its checkpoint, if the cadence (``train.checkpoint_every``) wrote one, is on disk, and
    may raise to stop training (the run stays resumable from its last checkpoint)."""

    def on_row(self, row: dict) -> None:
        pass

    def on_epoch(self, trainer: Trainer, row: dict) -> None:
        pass


class Trainer:
    def __init__(
        self,
        spec: Spec,
        out: str,
        *,
        device: str = "auto",
        quiet: bool = False,
        allow_python: bool = False,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.spec = spec
        self.out = out
        self.callbacks = list(callbacks)
        self.device = resolve_device(device)
        self.dist = Distributed(self.device)
        self.quiet = quiet or not self.dist.main
        self.model = compile_spec(spec, allow_python=allow_python, table_sizes=table_sizes(spec)).to(self.device)
        self.terms = {name: build_term(spec, t).to(self.device) for name, t in spec.objective.items()}
        self.train_data = SplitData.build(spec, "train")
        self.test_data = SplitData.build(spec, "test") if "test" in spec.data.split else None
        self.generator = torch.Generator().manual_seed(spec.seed)
        self.state = {"stage": 0, "epoch": 0, "step": 0, "best": None}
        self._writer = ckpt.Writer()  # checkpoints are written while the next epoch trains
        self._checkpointed: float | None = None  # perf_counter() of the last checkpoint written
        self._checkpoint_main_s = 0.0  # what the last one cost this thread (the copy)
        self._best_pending: ckpt.Snapshot | None = None  # a best epoch not yet written
        self._eval_outputs: tuple[int, dict[str, torch.Tensor]] | None = None  # see `evaluate`

    # -- files ---------------------------------------------------------------------------------
    def _log(self, row: dict) -> None:
        if self.dist.main:
            with open(os.path.join(self.out, "metrics.jsonl"), "a") as f:
                f.write(json.dumps(row) + "\n")
            for cb in self.callbacks:
                cb.on_row(row)

    def _trim_metrics(self, step: int) -> None:
        """Drop the rows an interrupted run wrote after its last checkpoint."""
        path = os.path.join(self.out, "metrics.jsonl")
        if not self.dist.main or not os.path.isfile(path):
            return
        with open(path) as f:
            rows = [line for line in f if line.strip()]
        keep = []
        for line in rows:
            try:
                row = json.loads(line)
            except ValueError:  # a row cut off by the interruption
                continue
            if isinstance(row, dict) and isinstance(row.get("step", 0), int) and row.get("step", 0) <= step:
                keep.append(line)
        ckpt.atomic_write_text(path, "".join(keep))

    def _prepare_run_dir(self, resume: bool, force: bool = False) -> None:
        """Check the run folder (under its lock) and write the resolved spec only once the
        comparison with the run's own spec has passed (see ``rundir.check_resume``)."""
        if not self.dist.main:
            return
        last = os.path.join(self.out, "checkpoints", "last")
        exists = os.path.exists(last) or os.path.exists(last + ".old")
        if not resume and exists:
            raise RunError(f"{self.out} already holds a run; pass --resume to continue it, or choose another --out")
        text = dump_resolved(self.spec)
        changed = rundir.check_resume(self.out, text, force) if resume and exists else {}
        try:
            ckpt.atomic_write_text(os.path.join(self.out, "spec.yaml"), text)
        except OSError as exc:
            raise rundir.write_error(f"{self.out}/spec.yaml", exc) from None
        event = "resume" if resume and exists else "start"
        rundir.record(self.out, event, **({"forced": {p: list(d) for p, d in changed.items()}} if changed else {}))

    # -- stages ---------------------------------------------------------------------------------
    def _optimizer(self, stage: StageSpec) -> torch.optim.Optimizer | None:
        """One parameter group per distinct setting (nodes without overrides share one): fewer
        groups, less per-step bookkeeping in the optimizer."""
        from latentspec.nn import optim

        comp, cfg = stage.optimizer.instance, stage.optimizer.config
        groups, tables = self._groups(stage, split_tables=self.spec.train.table_updates == "rows")
        # latent tables update row-wise where the setting allows: their lookups then give sparse
        # gradients and a step costs O(batch × dim), not O(size × dim); a setting without a
        # row-wise form (weight decay, momentum, RMSprop) keeps them with the dense parameters
        rowwise = optim.rowwise(comp.torch_name, tables, comp.kwargs(cfg)) if tables else None
        if tables and rowwise is None:
            groups, tables = self._groups(stage, split_tables=False)
        sparse = {name for g in tables for name in g["nodes"]}
        for name, lat in self.spec.latents.items():
            if lat.table:
                self.model.module_of(name).sparse = name in sparse
        parts = ([comp.build(groups, cfg)] if groups else []) + ([rowwise] if rowwise is not None else [])
        if not parts:
            return None
        return optim.Optimizers(parts) if rowwise is not None else parts[0]

    def _groups(self, stage: StageSpec, split_tables: bool) -> tuple[list[dict], list[dict]]:
        """The stage's parameter groups, and (``split_tables``) its latent tables' apart."""
        overrides = stage.optimizer.config.get("groups") or {}
        by_setting: dict[tuple, dict] = {}
        tables: dict[tuple, dict] = {}
        for name in stage.trainable:
            params = list(self.model.module_of(name).parameters())
            if not params:
                continue
            setting = overrides.get(name, {})
            key = tuple(sorted(setting.items()))
            lat = self.spec.latents.get(name)
            into = tables if split_tables and lat is not None and lat.table else by_setting
            g = into.setdefault(key, {"params": [], "nodes": [], **setting})
            g["params"] += params
            g["nodes"].append(name)
        return list(by_setting.values()), list(tables.values())

    def _set_trainable(self, stage: StageSpec) -> None:
        self.model.requires_grad_(False)
        self.model.eval()
        for name in stage.trainable:
            m = self.model.module_of(name)
            m.requires_grad_(True)
            m.train()
        # non-parametric ops (dropout-free) follow the model's mode in training
        for name, n in self.spec.nodes.items():
            if n.kind == "op":
                self.model.module_of(name).train()

    def _stage_graph(self, stage: StageSpec):
        outs = list(dict.fromkeys(t for name in stage.terms for t in self.spec.objective[name].inputs))
        return self.model.graph(outs, training=True)

    def _args(self, plan, batch: dict, generator: torch.Generator) -> list:
        return batch_args(self.model, plan, batch, generator, self.device)

    def _loss(self, stage, outs: dict, step: int, epoch: float):
        total, parts = 0.0, {}
        for name in stage.terms:
            t = self.spec.objective[name]
            value = self.terms[name](*(outs[x] for x in t.inputs))
            parts[name] = value
            total = total + term_weight(t, step, epoch) * value
        return total, parts

    def _init_tables(self) -> None:
        """Latent tables with `init: pca` start from the PCA of the training images (GLO)."""
        for name, lat in self.spec.latents.items():
            if not (lat.table and lat.init == "pca"):
                continue
            image = next(
                (
                    f
                    for f, info in ((f, self.spec.infos[f]) for f in self.spec.data.fields)
                    if info.dtype == "float32" and info.shape and len(info.shape) >= 2
                ),
                None,
            )
            if image is None:
                raise RunError(f"latent '{name}': init pca needs an image field to take components from")
            x = self.train_data.fields[image].flatten(1).double()
            x = x - x.mean(0)
            u, s, _ = torch.linalg.svd(x, full_matrices=False)
            k = min(lat.dim, u.shape[1])
            codes = torch.zeros(len(x), lat.dim, dtype=torch.float64)
            codes[:, :k] = u[:, :k] * s[:k]
            codes = (
                codes
                / codes.norm(dim=1, keepdim=True).clamp_min(1e-12)
                * (lat.radius if lat.project == "l2_ball" else 1.0)
            )
            self.model.module_of(name).init_from(codes.float().to(self.device))

    def _fit_pca(self, stage: StageSpec) -> None:
        for name in stage.trainable:
            n = self.spec.nodes[name]
            gm, plan = self.model.graph(list(n.inputs[:1]), training=True)
            with torch.no_grad():
                xs = []
                for batch in self.train_data.batches(self.spec, 0, shuffle=False, batch=1024):
                    out = gm(*self._args(plan, batch, torch.Generator().manual_seed(0)))
                    xs.append(out[n.inputs[0]].flatten(1))
                self.model.module_of(name).fit(torch.cat(xs))

    def _fit_priors(self, stage: StageSpec) -> None:
        """`fit: gaussian | gmm`: fit each latent's prior to its codes over the training split
        (the latent itself: a table's codes, or `fit_from`, e.g. the encoder mean)."""
        for name in stage.trainable:
            lat = self.spec.latents[name]
            src = lat.fit_from or name
            gm, plan = self.model.graph([src], training=True)
            xs = []
            with torch.no_grad():
                for batch in self.train_data.batches(self.spec, 0, shuffle=False, batch=1024):
                    out = gm(*self._args(plan, batch, torch.Generator().manual_seed(0)))
                    xs.append(out[src].flatten(1).cpu())
            codes = torch.cat(xs)  # (N, dim)
            need = lat.components if lat.prior == "gmm" else 2
            if len(codes) < max(need, 2):
                raise RunError(
                    f"latent '{name}': a {lat.prior} prior needs at least {max(need, 2)} training codes, got {len(codes)}"
                )
            self.model.prior_of(name).fit(codes, seed=self.spec.seed)

    def _project(self, stage: StageSpec) -> None:
        """Project the tables' codes after a step: only the rows the step changed when the table
        updates row-wise (its coalesced sparse gradient lists them), else every row."""
        for name in stage.trainable:
            lat = self.spec.latents.get(name)
            if lat is not None and lat.table and lat.project:
                table = self.model.module_of(name)
                grad = table.weight.grad
                if not table.sparse:
                    table.project_()
                elif grad is not None:  # None: the step did not use the table
                    table.project_(grad._indices()[0])

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, stage: StageSpec, data: SplitData) -> dict[str, float]:
        names = held_out_terms(self.spec, stage.terms)
        from latentspec.train.collapse import shared_rows

        shared = shared_rows(self, data) if data is self.test_data and self.dist.main else None
        keep = (*shared, {}) if shared is not None else None
        out = {
            k: self.dist.mean(v)
            for k, v in evaluate_terms(self.spec, self.model, self.terms, names, data, self.device, keep).items()
        }
        # the outputs on the collapse check's rows, for this step's check
        self._eval_outputs = (self.state["step"], keep[2]) if keep is not None else None
        # models whose codes are a latent table (GLO): the `invert` entry's fit of test rows
        out.update(
            (k, self.dist.mean(v))
            for k, v in inversion_metrics(
                self.spec, self.model, stage.terms, data, self.device, rows=TRAINING_ROWS, steps=TRAINING_STEPS
            ).items()
        )
        bad = next((k for k, v in out.items() if not math.isfinite(v)), None)
        if bad is not None:
            raise NonFiniteError(
                f"stage {stage.name}, epoch {self.state['epoch'] + 1}, step {self.state['step']}: "
                f"evaluation metric '{bad}' is {out[bad]}; training stopped, no checkpoint written from this state"
            )
        return out

    # -- the loop -------------------------------------------------------------------------------
    def run(self, resume: bool = False, force: bool = False) -> dict:
        if not self.dist.main:
            return self._run(resume, force)
        rundir.check_out(self.out)
        with rundir.run_lock(self.out, "train --resume" if resume else "train"):
            try:
                summary = self._run(resume, force)
            except BaseException:
                with contextlib.suppress(Exception):  # the first error is the one to report
                    self._writer.close()  # the last checkpoint is whole before the error leaves
                raise
            self._writer.close()
            return summary

    def _run(self, resume: bool, force: bool) -> dict:
        spec = self.spec
        self._prepare_run_dir(resume, force)
        last = os.path.join(self.out, "checkpoints", "last")
        resumed = False
        if resume and (os.path.exists(last) or os.path.exists(last + ".old")):
            self.state = ckpt.load_state(last)
            ckpt.load_weights(last, self.model)
            ckpt.set_rng_state(self.generator, self.state["rng"])
            self._trim_metrics(self.state["step"])
            resumed = True
        else:
            self._trim_metrics(-1)  # rows of an attempt that died before its first checkpoint
            if self.state["stage"] == 0 and self.state["epoch"] == 0:
                self._init_tables()
        summary = {}
        for si in range(self.state["stage"], len(spec.train.stages)):
            stage = spec.train.stages[si]
            if stage.fit:
                if not (resumed and si == self.state["stage"] and self.state.get("fitted")):
                    self._fit_pca(stage) if stage.fit == "pca" else self._fit_priors(stage)
                    row = {"kind": "fit", "stage": stage.name, "step": self.state["step"]}
                    if self.test_data is not None and evaluates(self.spec, stage.terms):
                        row["test"] = self.evaluate(stage, self.test_data)
                    self._log(row)
                self.state.update(stage=si, epoch=0, fitted=True)
                self._checkpoint(None, None)
                if stage.epochs == 0:
                    self.state.update(stage=si + 1, fitted=False)
                    continue
            forward, plan, optimizer, base_lrs = self.begin_stage(stage)
            if resumed and si == self.state["stage"] and optimizer is not None and "optimizer" in self.state:
                ckpt.load_optimizer(last, optimizer, self.state["optimizer"])
            resumed = False
            n_epochs = (
                stage.epochs
                if stage.steps is None
                else math.ceil(stage.steps / max(1, len(self.train_data.batches(spec, 0))))
            )
            for epoch in range(self.state["epoch"], n_epochs):
                summary = self._epoch(si, stage, epoch, n_epochs, forward, plan, optimizer, base_lrs)
            self.state.update(stage=si + 1, epoch=0)
        return summary

    def _epoch(self, si, stage, epoch, n_epochs, forward, plan, optimizer, base_lrs) -> dict:
        spec = self.spec
        batches = self._epoch_batches(si, epoch)
        sums, count, seconds = {}, 0, 0.0
        bar = None
        if not self.quiet:
            from tqdm import tqdm

            bar = tqdm(
                total=len(batches),
                desc=f"{stage.name} {epoch + 1}/{n_epochs}",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
                disable=None,
            )
        for i, batch in enumerate(batches):
            t0 = time.perf_counter()
            n = len(next(iter(batch.values())))
            step, frac_epoch = self.state["step"], epoch + i / len(batches)
            loss_value, parts = self.step(stage, forward, plan, optimizer, base_lrs, batch, step, frac_epoch)
            seconds += time.perf_counter() - t0
            self.state["step"] = step + 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * n
            count += n
            if self.state["step"] % spec.train.log_every == 0:
                self._log(
                    {
                        "kind": "step",
                        "stage": stage.name,
                        "epoch": epoch + 1,
                        "step": self.state["step"],
                        "loss": loss_value,
                        "terms": parts,
                    }
                )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4g}", img_s=f"{count / max(seconds, 1e-9):.0f}")
        if bar is not None:
            bar.close()
        self._gather_tables(optimizer)
        train = {k: self.dist.mean(v / max(count, 1)) for k, v in sums.items()}
        row = {
            "kind": "epoch",
            "stage": stage.name,
            "epoch": epoch + 1,
            "step": self.state["step"],
            "seconds": seconds,
            "images_per_second": count / max(seconds, 1e-9),
            "lr": [g["lr"] for g in optimizer.param_groups] if optimizer is not None else [],
            "weights": {k: term_weight(spec.objective[k], self.state["step"], epoch + 1) for k in stage.terms},
            "train": train,
        }
        last_epoch = epoch + 1 == n_epochs
        every = spec.train.eval_every
        if (
            self.test_data is not None
            and evaluates(self.spec, stage.terms)
            and (last_epoch or (every and (epoch + 1) % every == 0))
        ):
            row["test"] = self.evaluate(stage, self.test_data)
        self._log(row)
        if not self.quiet:
            msg = " ".join(f"{k}={v:.4g}" for k, v in train.items())
            test = " ".join(f"{k}={v:.4g}" for k, v in row.get("test", {}).items())
            print(
                f"[{stage.name}] epoch {epoch + 1}/{n_epochs} {row['images_per_second']:.0f} img/s  train {msg}"
                + (f"  test {test}" if test else ""),
                file=sys.stderr,
            )
        if self.dist.main:
            from latentspec.train.collapse import check_epoch

            check_epoch(self, stage, epoch + 1)  # constant outputs, a loss stuck at a trivial predictor's
        self.state.update(stage=si, epoch=epoch + 1)
        self._checkpoint(optimizer, row, final=last_epoch)
        if spec.train.samples_every and ((epoch + 1) % spec.train.samples_every == 0 or last_epoch) and self.dist.main:
            from latentspec.train.pictures import epoch_samples

            epoch_samples(self, os.path.join(self.out, "samples", f"epoch-{epoch + 1:03d}.png"))
        if self.dist.main and self.callbacks:
            self._writer.wait()  # callbacks may read the epoch's checkpoint
            for cb in self.callbacks:
                cb.on_epoch(self, row)
        return row

    def begin_stage(self, stage: StageSpec):
        """Freeze what the stage does not train; its forward, plan, optimizer and base lrs."""
        self._set_trainable(stage)
        optimizer = self._optimizer(stage)
        gm, plan = self._stage_graph(stage)
        forward = gm
        if self.dist.world > 1 and optimizer is not None:
            wrapped = _StageForward(self.model, gm)
            # row-wise tables stay out of DDP: each rank updates the rows of its own examples
            local = {
                id(self.model.module_of(n).weight)
                for n, lat in self.spec.latents.items()
                if lat.table and self.model.module_of(n).sparse
            }
            ignore = [n for n, p in wrapped.named_parameters() if id(p) in local]
            torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(wrapped, ignore)
            if any(p.requires_grad for n, p in wrapped.named_parameters() if n not in ignore):
                forward = torch.nn.parallel.DistributedDataParallel(wrapped)
        if self.spec.train.compile:
            forward = torch.compile(forward)
        return forward, plan, optimizer, [g["lr"] for g in optimizer.param_groups] if optimizer else []

    def step(
        self, stage, forward, plan, optimizer, base_lrs, batch, step: int, frac_epoch: float
    ) -> tuple[float, dict]:
        """One optimizer step on ``batch``: the loss value and each term's value (tensors)."""
        if optimizer is not None and stage.schedule is not None:
            mult = stage.schedule.instance.value(stage.schedule.config, step, frac_epoch)
            for g, lr in zip(optimizer.param_groups, base_lrs):
                g["lr"] = lr * mult
        amp = self.spec.train.amp and self.device.type == "cuda"
        with torch.autocast("cuda", enabled=amp) if amp else contextlib.nullcontext():
            outs = forward(*self._args(plan, batch, self.generator))
            loss, parts = self._loss(stage, outs, step, frac_epoch)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            params = [p for g in optimizer.param_groups for p in g["params"]]
            # coalesces a latent table's sparse gradient; under torchrun the tables' (local) share
            # of the norm is summed over ranks, so that every rank clips by the same factor
            grad_norm = grad_norm_(params, stage.clip_grad, self._sum_over_ranks if self.dist.world > 1 else None)
            optimizer.step()
            self._project(stage)
        else:
            grad_norm = torch.zeros(())
        # one host sync for the loss, every term and the gradient norm
        values = torch.stack(
            [loss.detach(), *(v.detach() for v in parts.values()), grad_norm.detach().to(loss.device)]
        ).tolist()
        parts_values = dict(zip(parts, values[1:-1]))
        if not all(map(math.isfinite, values)):
            # stop here: nothing from this step reaches a checkpoint or the metrics
            self._non_finite(stage, step, frac_epoch, values[0], parts_values, values[-1])
        return values[0], parts_values

    # -- latent tables under torchrun ------------------------------------------------------------
    def _table_index(self) -> str | None:
        """The index field of the spec's latent tables, when training runs on several ranks."""
        if self.dist.world == 1:
            return None
        return next((lat.index for lat in self.spec.latents.values() if lat.table), None)

    def _epoch_batches(self, si: int, epoch: int) -> list[dict]:
        """The epoch's batches for this rank. Under torchrun a spec with latent tables gives
        each rank the examples whose row is its own (row % world == rank), in every batch of the
        epoch (all ranks take the same number of steps), so that a table's row is only ever
        updated by one rank; other specs give each rank its share of the batches."""
        index = self._table_index()
        rank, world = self.dist.rank, self.dist.world
        if index is None:
            return self.train_data.batches(self.spec, epoch + 1000 * si, shard=(rank, world))
        out = []
        for batch in self.train_data.batches(self.spec, epoch + 1000 * si):
            owner = batch[index] % world
            if torch.bincount(owner, minlength=world).min() == 0:
                continue  # a rank would get no rows (a small last batch): every rank skips it
            out.append({f: v[owner == rank] for f, v in batch.items()})
        return out

    @staticmethod
    def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
        torch.distributed.all_reduce(t)
        return t

    @torch.no_grad()
    def _gather_tables(self, optimizer) -> None:
        """Under torchrun, after an epoch: every rank takes each table row (and its optimizer
        moments) from the rank that owns it, so that all ranks, and the checkpoint that rank 0
        writes, hold the whole table. Exact: the owner's values plus zeros."""
        if self._table_index() is None:
            return
        rank, world = self.dist.rank, self.dist.world
        parts = [] if optimizer is None else getattr(optimizer, "parts", [optimizer])
        for name, lat in self.spec.latents.items():
            if not lat.table:
                continue
            weight = self.model.module_of(name).weight
            mine = (torch.arange(len(weight), device=weight.device) % world == rank).unsqueeze(1)
            tensors = [weight.data]
            for opt in parts:
                st = opt.state.get(weight, {})
                tensors += [v for v in st.values() if torch.is_tensor(v) and v.shape == weight.shape]
            for t in tensors:
                t.mul_(mine.to(t.dtype))
                torch.distributed.all_reduce(t)

    def _non_finite(self, stage, step: int, frac_epoch: float, loss: float, parts: dict, grad_norm: float) -> None:
        where = f"stage {stage.name}, epoch {int(frac_epoch) + 1}, step {step}"
        bad = next((k for k, v in parts.items() if not math.isfinite(v)), None)
        if bad is not None:
            what = f"term '{bad}' is {parts[bad]}"
        elif not math.isfinite(loss):
            what = f"the weighted loss is {loss}"
        else:
            name = next(
                (
                    n
                    for n, p in self.model.named_parameters()
                    if p.grad is not None and not torch.isfinite(p.grad).all()
                ),
                "?",
            )
            what = f"the gradient is {grad_norm} (first at parameter {name})"
        raise NonFiniteError(
            f"{where}: {what}; training stopped; no checkpoint is written from this state "
            "(lower the learning rate, clip gradients with clip_grad, or check the data scaling)"
        )

    def _checkpoint(self, optimizer, row: dict | None, *, final: bool = True) -> None:
        """After an epoch (``row``) or a fit: refuse non-finite weights, then write `last` (and
        `best` when the test score improved) if ``final`` (a stage's last epoch, a fit) or the
        cadence says so (:meth:`_checkpoint_due`); a best epoch not written now is kept in memory
        and written with the next `last`."""
        if not self.dist.main:
            return
        for name, value in self.model.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise NonFiniteError(
                    f"stage {self.state['stage']}, epoch {self.state['epoch']}, step {self.state['step']}: "
                    f"weight {name} is not finite; no checkpoint written from this state"
                )
        t0 = time.perf_counter()
        folder = os.path.join(self.out, "checkpoints")
        score = sum(row["test"].values()) if row is not None and "test" in row else None
        improved = score is not None and (self.state["best"] is None or score < self.state["best"])
        if improved:
            self.state["best"] = score  # before `last` is taken: a resumed run compares with it
        due = final or self._checkpoint_due()
        # a best epoch is kept in memory until the next `last`, unless that copy is too large
        if improved and not due and ckpt.state_bytes(self.model, None) > ASYNC_CHECKPOINT_BYTES:
            due = True
        if not due:
            if improved:  # written with the next `last`
                self._best_pending = ckpt.Snapshot.of(self.model, None, self._best_state(row), copy=True)
            return
        self.state["rng"] = ckpt.rng_state(self.generator)
        state = {k: v for k, v in self.state.items() if k != "optimizer"}
        # in the background unless a copy of the state would cost too much memory (huge tables)
        copy = ckpt.state_bytes(self.model, optimizer) <= ASYNC_CHECKPOINT_BYTES
        last = ckpt.Snapshot.of(self.model, optimizer, state, copy=copy)
        jobs = [(os.path.join(folder, "last"), last)]
        if improved:
            jobs.append((os.path.join(folder, "best"), ckpt.Snapshot(last.weights, None, self._best_state(row))))
        elif self._best_pending is not None:
            jobs.append((os.path.join(folder, "best"), self._best_pending))
        self._best_pending = None
        if copy:
            self._writer.submit(jobs)
        else:
            self._writer.wait()
            for path, snap in jobs:
                ckpt.write(path, snap)
        self._checkpointed = time.perf_counter()
        self._checkpoint_main_s = self._checkpointed - t0

    def _best_state(self, row: dict | None) -> dict:
        return {**{k: v for k, v in self.state.items() if k != "optimizer"}, "metrics": row}

    def _checkpoint_due(self) -> bool:
        """`train.checkpoint_every` epochs, or (0, auto) once the time since the last checkpoint
        is AUTO_CHECKPOINT_FACTOR times what writing it took (copying on this thread, writing in
        the background), so checkpoints cost at most about 1/AUTO_CHECKPOINT_FACTOR of the time
        and a crash loses at most that much training, or one epoch when epochs take longer."""
        every = self.spec.train.checkpoint_every
        if every:
            return self.state["epoch"] % every == 0
        if self._checkpointed is None:
            return True
        cost = self._checkpoint_main_s + self._writer.seconds
        return time.perf_counter() - self._checkpointed >= AUTO_CHECKPOINT_FACTOR * cost


def train(
    spec: Spec,
    out: str,
    *,
    resume: bool = False,
    device: str = "auto",
    quiet: bool = False,
    allow_python: bool = False,
    force: bool = False,
    callbacks: Sequence[Callback] = (),
) -> dict:
    """Train ``spec`` into run folder ``out``. ``resume`` continues its last checkpoint (the
    model and data must match the run's spec; changed training settings need ``force``)."""
    if not resume:
        rundir.check_out(out)
    trainer = Trainer(spec, out, device=device, quiet=quiet, allow_python=allow_python, callbacks=callbacks)
    try:
        summary = trainer.run(resume=resume, force=force)
    except BaseException:
        trainer.dist.close(barrier=False)  # the other ranks may be mid-epoch: do not wait for them
        raise
    trainer.dist.close()
    return summary
