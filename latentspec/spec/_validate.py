"""Pass 3 of validation: the tensor graph. Builds the :class:`Spec` model as it checks.

Every check appends a diagnostic and carries on, so one run reports every problem.
"""

from __future__ import annotations

import heapq
from typing import Any

from latentspec.components import DATASETS, MODULES, OPS, OPTIMIZERS, SAMPLERS, TERMS
from latentspec.components._node import Context, LatentInfo, ShapeError, TensorInfo
from latentspec.spec._diagnostics import Diagnostic, did_you_mean
from latentspec.spec._model import (
    DataSpec,
    EntrySpec,
    FieldSpec,
    NodeSpec,
    Spec,
    StageSpec,
    TermSpec,
    TrainSpec,
)
from latentspec.spec._yaml import Document


def _prefixed(name: str, exc: Exception) -> str:
    msg = str(exc)
    return msg if msg.startswith(name) else f"{name}: {msg}"


def toposort(names: list[str], succ: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """Kahn's algorithm, ties broken by spec order: (order, []) or ([], a cycle)."""
    rank = {n: i for i, n in enumerate(names)}
    indeg = dict.fromkeys(names, 0)
    for n in names:
        for m in succ[n]:
            indeg[m] += 1
    ready = [(rank[n], n) for n in names if indeg[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(ready, (rank[m], m))
    if len(order) == len(names):
        return order, []
    # a cycle: walk successors inside the unsorted rest until a node repeats
    rest = [n for n in names if indeg[n] > 0]
    path, seen, n = [], {}, rest[0]
    while n not in seen:
        seen[n] = len(path)
        path.append(n)
        n = min((m for m in succ[n] if indeg[m] > 0), key=rank.__getitem__)
    return [], path[seen[n] :]


def as_names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


class Checker:
    def __init__(self, doc: Document, base_dir: str) -> None:
        self.doc = doc
        self.raw: dict = doc.data  # type: ignore[assignment]
        self.base_dir = base_dir
        self.diags: list[Diagnostic] = []
        self.infos: dict[str, TensorInfo] = {}
        self.producers: dict[str, str] = {}
        self.producer_path: dict[str, tuple] = {}

    def error(self, path: tuple, msg: str, key: bool = False) -> None:
        self.diags.append(self.doc.diag(path, msg, key=key))

    def warn(self, path: tuple, msg: str, key: bool = False) -> None:
        self.diags.append(self.doc.diag(path, msg, severity="warning", key=key))

    # -- data -------------------------------------------------------------------------------
    def data(self) -> DataSpec:
        raw = self.raw.get("data") or {}
        ds = raw.get("dataset", "mnist5k")
        name, cfg = (ds, {}) if isinstance(ds, str) else next(iter(ds.items()))
        cls = DATASETS[name]
        if not isinstance(cfg, dict):
            cfg = {getattr(cls, "shorthand", "path"): cfg}
        cfg = {**cls.resolve(cfg), "_base_dir": self.base_dir}
        arrays = {}
        try:
            arrays = cls().arrays(cfg)
        except Exception as exc:
            self.error(("data", "dataset"), f"dataset {name}: {exc}")
        sampler = raw.get("sampler", "shuffle")
        sname, scfg = (sampler, {}) if isinstance(sampler, str) else next(iter(sampler.items()))
        scfg = SAMPLERS[sname].resolve(scfg or {})
        fields = {}
        for fname, f in (raw.get("fields") or {}).items():
            fs = FieldSpec(
                fname,
                f["from"] if isinstance(f["from"], str) else tuple(f["from"]),
                f.get("dtype"),
                tuple(f["scale"]) if "scale" in f else None,
                tuple(f["shape"]) if "shape" in f else None,
                f.get("classes"),
                f.get("one_hot", False),
                f.get("encode"),
                dict(f.get("where") or {}),
            )
            fields[fname] = fs
            self.produce(fname, "field", ("data", "fields", fname))
            self.infos[fname] = self.field_info(fs, arrays, ("data", "fields", fname), bool(arrays))
        if SAMPLERS[sname].grouped:
            fields.setdefault("vary", FieldSpec("vary", "vary", "int64"))
            self.produce("vary", "field", ("data", "sampler"))
            self.infos["vary"] = TensorInfo((), "int64", classes=len(scfg.get("vary") or []) or None)
            for i, v in enumerate(scfg.get("vary") or []):
                if arrays and v not in arrays:
                    self.error(
                        ("data", "sampler", sname, "vary", i),
                        f"dataset {name} has no factor '{v}'{did_you_mean(v, arrays)}",
                    )
        split = dict(raw.get("split") or {"train": 1.0})
        return DataSpec(
            name,
            cfg,
            split,
            fields,
            raw.get("batch", 64),
            raw.get("test_batch"),
            sname,
            scfg,
            raw.get("drop_last", False),
        )

    def field_info(self, f: FieldSpec, arrays: dict, path: tuple, known: bool) -> TensorInfo:
        if f.source == "index":
            return TensorInfo((), "int64")
        if isinstance(f.source, tuple):
            for i, s in enumerate(f.source):
                if known and s not in arrays:
                    self.error(path + ("from", i), f"dataset has no array '{s}'{did_you_mean(s, arrays)}")
                elif known and arrays[s].shape != ():
                    self.error(
                        path + ("from", i),
                        f"only scalar arrays can be stacked; '{s}' has shape {list(arrays[s].shape)}",
                    )
            k = len(f.source) * (2 if f.encode == "sincos" else 1)
            return TensorInfo((k,), "float32", range=tuple(f.scale) if f.scale else None)
        if f.source not in arrays:
            if known:
                self.error(
                    path + ("from",),
                    f"dataset has no array '{f.source}'{did_you_mean(f.source, arrays)}; it has: {', '.join(sorted(arrays))}, index",
                )
            return TensorInfo(f.shape)
        a = arrays[f.source]
        for k in f.where:
            if k not in arrays:
                self.error(
                    path + ("where", k), f"dataset has no array '{k}' to filter on{did_you_mean(k, arrays)}", key=True
                )
        integer = (
            (a.dtype.startswith(("int", "uint")) and a.kind in ("label", "index"))
            or f.classes is not None
            or f.dtype == "int64"
        )
        if integer and f.dtype != "float32" and not f.scale:
            classes = f.classes or a.classes
            if f.one_hot:
                if classes is None:
                    self.error(path, "one_hot needs `classes`")
                return TensorInfo((classes,) if classes else None, "float32", range=(0.0, 1.0))
            return TensorInfo((), "int64", classes=classes, range=(0.0, float(classes - 1)) if classes else None)
        shape = a.shape
        if f.shape is not None:
            import math

            if math.prod(f.shape) != math.prod(a.shape):
                self.error(
                    path + ("shape",),
                    f"shape {list(f.shape)} has {math.prod(f.shape)} values but array '{f.source}' has shape {list(a.shape)} ({math.prod(a.shape)} values)",
                )
            shape = f.shape
        if f.encode == "sincos":
            shape = (*shape[:-1], 2 * shape[-1]) if shape else (2,)
        rng = f.scale or (None if f.encode else a.range)
        return TensorInfo(tuple(shape), "float32", range=tuple(rng) if rng else None)

    # -- tensors ------------------------------------------------------------------------------
    def produce(self, tensor: str, producer: str, path: tuple) -> None:
        if tensor in self.producers:
            first = self.doc.pos(self.producer_path[tensor])
            self.error(path, f"tensor '{tensor}' is produced twice: here and by {self._who(tensor)} (line {first[0]})")
            return
        self.producers[tensor] = producer
        self.producer_path[tensor] = path

    def _who(self, tensor: str) -> str:
        p = self.producers[tensor]
        return (
            {"field": "data field", "latent": "latent"}.get(p, f"node '{p}'")
            if p in ("field", "latent")
            else f"node '{p}'"
        )

    def latents(self) -> dict[str, LatentInfo]:
        out = {}
        for name, raw in (self.raw.get("latents") or {}).items():
            table = raw.get("table", False)
            index = table.get("index") if isinstance(table, dict) else None
            out[name] = LatentInfo(
                name,
                raw["dim"],
                raw.get("prior", "none" if table else "normal"),
                bool(table) or isinstance(table, dict),
                index,
                None if raw.get("project", "none") == "none" else raw["project"],
                raw.get("radius", 1.0),
                raw.get("init", "pca" if table else "normal"),
                raw.get("init_scale", 1.0 if not table else 0.1),
                raw.get("candidates", 1),
                {g: tuple(v) for g, v in (raw.get("groups") or {}).items()},
            )
        return out

    # -- nodes ---------------------------------------------------------------------------------
    def parse_nodes(self, raw_nodes: dict, prefix: tuple) -> dict[str, NodeSpec]:
        nodes = {}
        for name, raw in raw_nodes.items():
            path = prefix + (name,)
            if "use" in raw:
                kind, typ = "use", ""
            elif "module" in raw:
                kind, typ = "module", raw["module"]
            else:
                kind, typ = "op", raw["op"]
            cls = MODULES[typ] if kind == "module" else OPS[typ] if kind == "op" else None
            params = {
                k: v
                for k, v in raw.items()
                if k not in ("module", "op", "use", "in", "out", "doc", "method", "body", "state")
            }
            cfg = cls.resolve(params) if cls else {}
            outs = as_names(raw.get("out"))
            if not outs:
                outs = (name,)
            body = state = None
            if kind == "op" and typ == "loop":
                body = self.parse_nodes(raw.get("body") or {}, path + ("body",))
                state = dict(raw.get("state") or {})
            nodes[name] = NodeSpec(
                name,
                kind,
                typ,
                name if kind != "use" else raw["use"],
                as_names(raw.get("in")),
                outs,
                cfg,
                raw.get("method"),
                body,
                state,
                path,
            )
        return nodes

    def resolve_uses(self, nodes: dict[str, NodeSpec], outer: dict[str, NodeSpec]) -> dict[str, NodeSpec]:
        """Point every `use:` at the module node that owns the weights."""
        every = {**outer, **nodes}
        out = {}
        for name, n in nodes.items():
            if n.kind == "use":
                target, seen = n.owner, {name}
                while target in every and every[target].kind == "use" and target not in seen:
                    seen.add(target)
                    target = every[target].owner
                t = every.get(target)
                if t is None:
                    self.error(n.path + ("use",), f"use: no node named '{target}'{did_you_mean(target, every)}")
                    continue
                if t.kind != "module":
                    self.error(
                        n.path + ("use",),
                        f"use: '{target}' is an {t.kind} node ({t.type}); `use` shares the weights of a `module` node",
                    )
                    continue
                if n.method and n.method not in MODULES[t.type].methods:
                    self.error(
                        n.path + ("method",),
                        f"module {t.type} has no method '{n.method}'"
                        + (f"; it has: {', '.join(MODULES[t.type].methods)}" if MODULES[t.type].methods else ""),
                    )
                n = NodeSpec(n.name, "use", t.type, t.name, n.inputs, n.outputs, t.cfg, n.method, None, None, n.path)
            elif n.body is not None:
                n = NodeSpec(
                    n.name,
                    n.kind,
                    n.type,
                    n.owner,
                    n.inputs,
                    n.outputs,
                    n.cfg,
                    n.method,
                    self.resolve_uses(n.body, every),
                    n.state,
                    n.path,
                )
            out[name] = n
        return out

    def check_arity(self, n: NodeSpec) -> bool:
        if n.body is not None:
            for s in n.state or {}:
                if not any(s in b.outputs for b in n.body.values()):
                    self.error(
                        n.path + ("state", s),
                        f"loop state '{s}' is never updated: a body node must output '{s}'",
                        key=True,
                    )
            if len(n.outputs) != len(n.state or {}):
                self.error(
                    n.path + ("out",),
                    f"a loop outputs its final states: {len(n.state or {})} state(s) but {len(n.outputs)} output(s)",
                )
                return False
            return True
        cls = MODULES[n.type] if n.kind in ("module", "use") else OPS[n.type]
        ok = True
        for what, count, (lo, hi) in (
            ("inputs", len(n.inputs), cls.n_inputs),
            ("outputs", len(n.outputs), cls.n_outputs),
        ):
            if count < lo or (hi is not None and count > hi):
                want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
                self.error(
                    n.path + ("in" if what == "inputs" else "out",),
                    f"{n.kind if n.kind != 'use' else 'module'} {n.type} takes {want} {what}, got {count}",
                )
                ok = False
        return ok

    def graph(self, nodes: dict[str, NodeSpec], latents: dict[str, LatentInfo]) -> list[str]:
        """Register producers, check inputs exist and there are no cycles; returns a topological order."""
        for n in nodes.values():
            for i, t in enumerate(n.outputs):
                if t in latents and latents[t].table:
                    self.error(
                        n.path + ("out",), f"'{t}' is a latent table (one code per example); no node may produce it"
                    )
                elif self.producers.get(t) == "latent":
                    # a node that draws a declared latent is its producer (e.g. reparameterize -> z)
                    self.producers[t] = n.name
                    self.producer_path[t] = n.path + ("out",)
                else:
                    self.produce(t, n.name, n.path + (("out", i) if "out" in (self.raw_at(n.path) or {}) else ()))
        succ: dict[str, set[str]] = {name: set() for name in nodes}
        for n in nodes.values():
            ins = n.reads
            for t in ins:
                if t not in self.producers:
                    where = n.path + ("in",) if t in n.inputs else n.path + ("body",)
                    if isinstance(self.raw_at(n.path + ("in",)), list) and t in n.inputs:
                        where = n.path + ("in", n.inputs.index(t))
                    self.error(where, f"undefined tensor '{t}'{did_you_mean(t, self.producers)}")
                elif self.producers[t] in nodes:
                    succ[self.producers[t]].add(n.name)
        order, cycle = toposort(list(nodes), succ)
        if cycle:
            self.error(
                nodes[cycle[0]].path,
                f"cycle {' -> '.join([*cycle, cycle[0]])}: only a `loop` node may feed a tensor back",
            )
            return list(nodes)
        return order

    def raw_at(self, path: tuple) -> Any:
        cur: Any = self.raw
        for p in path:
            try:
                cur = cur[p]
            except (KeyError, IndexError, TypeError):
                return None
        return cur

    def infer(self, n: NodeSpec, latents: dict[str, LatentInfo]) -> None:
        ins = tuple(self.infos.get(t, TensorInfo()) for t in n.reads)
        if n.body is not None:
            self.infer_loop(n, ins, latents)
            return
        cls = MODULES[n.type] if n.kind in ("module", "use") else OPS[n.type]
        ctx = Context(n.name, n.cfg, n.reads, n.outputs, ins, latents)
        try:
            outs = cls().infer(ctx) if not n.method else [TensorInfo(None)]
        except ShapeError as exc:
            self.error(n.path, _prefixed(n.type, exc))
            outs = [TensorInfo() for _ in n.outputs]
        for t, info in zip(n.outputs, outs, strict=False):
            lat = latents.get(t)
            if lat is not None and info.shape is not None and info.shape != (lat.dim,):
                self.error(
                    n.path,
                    f"node '{n.name}' makes latent '{t}' with shape {list(info.shape)}, but the latent is declared with dim {lat.dim}",
                )
            self.infos[t] = info

    def infer_loop(self, n: NodeSpec, ins: tuple[TensorInfo, ...], latents) -> None:
        for s, init in (n.state or {}).items():
            if init not in self.infos:
                continue
            self.infos[s] = self.infos[init]
        saved = dict(self.producers)
        for s in n.state or {}:
            self.producers[s] = "loop-state"
        for b in n.body.values():
            for t in b.outputs:
                if t not in (n.state or {}):
                    self.produce(t, b.name, b.path)
        for b in n.body.values():
            if self.check_arity(b):
                for t in b.inputs:
                    if t not in self.producers and t not in self.infos:
                        self.error(b.path + ("in",), f"undefined tensor '{t}'{did_you_mean(t, self.producers)}")
                self.infer(b, latents)
        for s, t in zip(n.state or {}, n.outputs, strict=False):
            self.infos[t] = self.infos.get(s, TensorInfo())
        self.producers = saved
        for t in n.outputs:
            self.producers[t] = n.name

    # -- objective, training, export -----------------------------------------------------------
    def term(self, name: str, raw: dict, path: tuple, latents) -> TermSpec:
        cls = TERMS[raw["term"]]
        params = {k: v for k, v in raw.items() if k not in ("term", "in", "weight", "stages", "doc")}
        t = TermSpec(
            name,
            raw["term"],
            as_names(raw.get("in")),
            cls.resolve(params),
            raw.get("weight", 1.0),
            tuple(raw["stages"]) if "stages" in raw else None,
            path,
        )
        lo, hi = cls.n_inputs
        if len(t.inputs) < lo or (hi is not None and len(t.inputs) > hi):
            want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
            self.error(path + ("in",), f"term {t.term} takes {want} inputs, got {len(t.inputs)}")
            return t
        ok = True
        for i, x in enumerate(t.inputs):
            if x not in self.producers:
                where = path + ("in", i) if isinstance(raw.get("in"), list) else path + ("in",)
                self.error(where, f"undefined tensor '{x}'{did_you_mean(x, self.producers)}")
                ok = False
        if ok:
            try:
                cls().infer(
                    Context(
                        name, t.cfg, t.inputs, (), tuple(self.infos.get(x, TensorInfo()) for x in t.inputs), latents
                    )
                )
            except ShapeError as exc:
                self.error(path, _prefixed(t.term, exc))
        return t

    def optimizer(self, raw: dict | None, path: tuple, names: set[str]) -> dict:
        raw = dict(raw or {"name": "adam"})
        cfg = OPTIMIZERS[raw.get("name", "adam")].resolve({k: v for k, v in raw.items() if k != "name"})
        for g in cfg.get("groups") or {}:
            if g not in names:
                self.error(path + ("groups", g), f"no node or latent named '{g}'{did_you_mean(g, names)}", key=True)
        return {"name": raw.get("name", "adam"), **cfg}

    def train(self, nodes: dict[str, NodeSpec], latents, objective: dict[str, TermSpec]) -> TrainSpec:
        raw = self.raw.get("train") or {}
        trainables = {n.name for n in nodes.values() if n.kind == "module" and MODULES[n.type].has_params} | {
            l.name for l in latents.values() if l.table
        }
        names = set(nodes) | set(latents)
        stages = []
        default_opt = self.optimizer(raw.get("optimizer"), ("train", "optimizer"), names)
        if "stages" not in raw:
            stages.append(
                StageSpec(
                    "train",
                    tuple(sorted(trainables)),
                    tuple(objective),
                    default_opt,
                    raw.get("epochs", 10),
                    raw.get("steps"),
                    None,
                    raw.get("schedule"),
                    raw.get("clip_grad"),
                )
            )
        seen = set()
        for i, s in enumerate(raw.get("stages") or []):
            path = ("train", "stages", i)
            if s["name"] in seen:
                self.error(path + ("name",), f"two stages named '{s['name']}'")
            seen.add(s["name"])
            for j, t in enumerate(s.get("trainable", [])):
                if t not in names:
                    self.error(path + ("trainable", j), f"no node or latent named '{t}'{did_you_mean(t, names)}")
                elif t in nodes and nodes[t].kind == "use":
                    self.error(
                        path + ("trainable", j),
                        f"'{t}' shares the weights of '{nodes[t].owner}'; name '{nodes[t].owner}' instead",
                    )
                elif t not in trainables:
                    self.error(path + ("trainable", j), f"'{t}' has no trainable parameters")
            for j, t in enumerate(s.get("terms", [])):
                if t not in objective:
                    self.error(path + ("terms", j), f"no objective term named '{t}'{did_you_mean(t, objective)}")
            if s.get("fit") == "pca":
                for t in s.get("trainable", []):
                    if t in nodes and nodes[t].type != "pca":
                        self.error(path + ("trainable",), f"`fit: pca` fits pca modules; '{t}' is a {nodes[t].type}")
            elif not s.get("terms") and "terms" in s:
                self.error(path + ("terms",), "a stage needs at least one term")
            opt = self.optimizer(s["optimizer"], path + ("optimizer",), names) if "optimizer" in s else default_opt
            terms = tuple(
                s.get("terms", [t for t, ts in objective.items() if ts.stages is None or s["name"] in ts.stages])
            )
            stages.append(
                StageSpec(
                    s["name"],
                    tuple(s.get("trainable", sorted(trainables))),
                    terms,
                    opt,
                    s.get("epochs", 0 if s.get("fit") else raw.get("epochs", 10)),
                    s.get("steps"),
                    s.get("fit"),
                    s.get("schedule"),
                    s.get("clip_grad"),
                )
            )
        stage_names = {s.name for s in stages}
        for t in objective.values():
            for j, sn in enumerate(t.stages or ()):
                if sn not in stage_names:
                    self.error(t.path + ("stages", j), f"no stage named '{sn}'{did_you_mean(sn, stage_names)}")
        return TrainSpec(
            tuple(stages),
            raw.get("amp", False),
            raw.get("compile", False),
            raw.get("eval_every", 1),
            raw.get("samples_every", 0),
            raw.get("log_every", 10),
        )

    def export(self, nodes, latents, objective) -> dict[str, EntrySpec]:
        out = {}
        for name, raw in (self.raw.get("export") or {}).items():
            path = ("export", name)
            ins, outs = tuple(raw.get("in", [])), tuple(raw.get("out", []))
            ok = True
            local = dict(raw.get("inputs") or {})
            for t, decl in local.items():
                if t in self.producers:
                    self.error(
                        path + ("inputs", t),
                        f"'{t}' is already a tensor of the model ({self._who(t)}); an entry's own inputs need new names",
                        key=True,
                    )
                    continue
                if t not in ins:
                    self.error(path + ("inputs", t), f"'{t}' is declared but not listed in this entry's `in`", key=True)
                rng = decl.get("range") or ((0.0, 1.0) if decl.get("meaning") == "mask" else None)
                self.infos[t] = TensorInfo(
                    tuple(decl["shape"]), decl.get("dtype", "float32"), range=tuple(rng) if rng else None
                )
            for key, names in (("in", ins), ("out", outs)):
                for i, t in enumerate(names):
                    if t not in self.producers and t not in local:
                        hint = " (declare an entry-only input under `inputs:` with its shape)" if key == "in" else ""
                        self.error(path + (key, i), f"undefined tensor '{t}'{did_you_mean(t, self.producers)}{hint}")
                        ok = False
            opt = raw.get("optimize")
            terms = []
            if opt is not None:
                if opt not in latents:
                    self.error(path + ("optimize",), f"optimize: '{opt}' is not a latent{did_you_mean(opt, latents)}")
                    ok = False
                for j, t in enumerate(raw.get("terms") or []):
                    if isinstance(t, str):
                        if t not in objective:
                            self.error(
                                path + ("terms", j), f"no objective term named '{t}'{did_you_mean(t, objective)}"
                            )
                        else:
                            terms.append(objective[t])
                    else:
                        saved = dict(self.producers)
                        self.producers.update(dict.fromkeys(local, "entry-input"))
                        terms.append(self.term(f"{name}_{j}", t, path + ("terms", j), latents))
                        self.producers = saved
                if not raw.get("terms"):
                    self.error(path, "an `optimize:` entry needs `terms:` (what to minimise)")
            elif raw.get("terms"):
                self.error(path + ("terms",), "`terms:` only applies to an `optimize:` entry")
            if ok:
                self.check_reach(name, ins, outs, opt, terms, nodes, latents)
            out[name] = EntrySpec(
                name,
                ins,
                outs,
                opt,
                tuple(terms),
                raw.get("steps", 200),
                raw.get("lr", 0.05),
                raw.get("starts", 1),
                raw.get("iterations"),
                {t: dict(d) for t, d in local.items()},
            )
        return out

    def check_reach(self, name, ins, outs, opt, terms, nodes, latents) -> None:
        """Every output (and term input) must be computable from the inputs, latents and noise."""
        given = set(ins) | ({opt} if opt else set())
        need = list(outs) + [t for term in terms for t in term.inputs]
        seen = set()
        while need:
            t = need.pop()
            if t in seen or t in given:
                continue
            seen.add(t)
            p = self.producers.get(t)
            if p == "field":
                self.error(
                    ("export", name, "in"),
                    f"entry '{name}' needs data field '{t}' but it is not among its inputs; add it to `in`",
                )
            elif p == "latent":
                if latents[t].table:
                    self.error(
                        ("export", name, "in"),
                        f"entry '{name}' needs latent table '{t}': give it as an input or `optimize: {t}`",
                    )
            elif p in nodes:
                n = nodes[p]
                if t in latents and latents[t].prior != "none" and not self._reaches_inputs(n, given, nodes):
                    continue  # cut: the latent is drawn from its prior (an explicit noise input)
                if self._training_only(n, latents):
                    need.append(n.inputs[0])  # exported as the identity
                else:
                    need.extend(n.reads)

    def _training_only(self, n: NodeSpec, latents) -> bool:
        if n.kind != "op" or n.body is not None:
            return False
        ins = tuple(self.infos.get(t, TensorInfo()) for t in n.inputs)
        return OPS[n.type]().training_only(Context(n.name, n.cfg, n.inputs, n.outputs, ins, latents))

    def _reaches_inputs(self, n: NodeSpec, given: set, nodes) -> bool:
        stack, seen = list(n.reads), set()
        while stack:
            t = stack.pop()
            if t in given:
                return True
            if t in seen:
                continue
            seen.add(t)
            p = self.producers.get(t)
            if p in nodes:
                stack.extend(nodes[p].reads)
        return False

    def dead_nodes(self, nodes: dict[str, NodeSpec], objective, export) -> None:
        used = {t for n in nodes.values() for t in n.reads}
        used |= {t for term in objective.values() for t in term.inputs}
        used |= {t for e in export.values() for t in (*e.outputs, *(x for term in e.terms for x in term.inputs))}
        for n in nodes.values():
            if not any(t in used for t in n.outputs):
                self.warn(
                    n.path,
                    f"node '{n.name}': nothing uses its output{'s' if len(n.outputs) > 1 else ''} {', '.join(repr(t) for t in n.outputs)}",
                    key=True,
                )

    def run(self) -> Spec | None:
        data = self.data()
        latents = self.latents()
        for name, lat in latents.items():
            self.produce(name, "latent", ("latents", name))
            self.infos[name] = TensorInfo((lat.dim,))
            if lat.table and lat.index is not None and lat.index not in data.fields:
                self.error(
                    ("latents", name, "table", "index"),
                    f"no data field '{lat.index}'{did_you_mean(lat.index, data.fields)}; add e.g. `{lat.index}: {{from: index}}` to data.fields",
                )
            if lat.table and lat.index is None:
                idx = [f.name for f in data.fields.values() if f.source == "index"]
                if not idx:
                    self.error(
                        ("latents", name, "table"),
                        "a latent table needs an index field: add `i: {from: index}` to data.fields and `table: {index: i}`",
                    )
                else:
                    latents[name] = LatentInfo(**{**lat.__dict__, "index": idx[0]})
        nodes = self.resolve_uses(self.parse_nodes(self.raw.get("nodes") or {}, ("nodes",)), {})
        arity_ok = {n: self.check_arity(s) for n, s in nodes.items()}
        order = self.graph(nodes, latents)
        for name in order:
            if arity_ok[name] and all(t in self.producers for t in nodes[name].reads):
                self.infer(nodes[name], latents)
        objective = {
            n: self.term(n, t, ("objective", n), latents) for n, t in (self.raw.get("objective") or {}).items()
        }
        train = self.train(nodes, latents, objective)
        export = self.export(nodes, latents, objective)
        self.dead_nodes(nodes, objective, export)
        if any(d.severity == "error" for d in self.diags):
            return None
        return Spec(
            self.raw["name"],
            self.raw.get("seed", 0),
            self.raw.get("description", ""),
            data,
            latents,
            {n: nodes[n] for n in order},
            objective,
            train,
            export,
            self.infos,
            self.producers,
            self.doc.text,
            self.doc.file,
            self.raw,
        )
