"""Pass 3 of validation: the tensor graph. Builds the :class:`Spec` model as it checks.

Every check appends a diagnostic and carries on, so one run reports every problem.
"""

from __future__ import annotations

from typing import Any

from latentspec.components import DATASETS, MODULES, OPS, OPTIMIZERS, SAMPLERS, SCHEDULES, TERMS
from latentspec.components._node import Context, LatentInfo, ShapeError, TensorInfo
from latentspec.components._registry import Choice, Registry
from latentspec.graph import EntryInput, Field, GraphBuilder, Latent, Node, PlanError, Problem, plan
from latentspec.spec._diagnostics import Diagnostic, did_you_mean
from latentspec.spec._model import (
    DataSpec,
    EntrySpec,
    FieldSpec,
    InputSpec,
    NodeSpec,
    Spec,
    StageSpec,
    TermSpec,
    TrainSpec,
)
from latentspec.spec._sections import (
    DATA,
    DEFAULT_OPTIMIZER,
    ENTRY,
    ENTRY_INPUT,
    ENTRY_KINDS,
    FIELD,
    FITTED_PRIORS,
    LATENT,
    OPTIMIZE_KINDS,
    STAGE,
    TABLE_DEFAULTS,
    TERM,
    TOP,
    TRAIN,
)
from latentspec.spec._yaml import Document


def _prefixed(name: str, exc: Exception) -> str:
    msg = str(exc)
    return msg if msg.startswith(name) else f"{name}: {msg}"


def as_names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


class Checker:
    def __init__(
        self,
        doc: Document,
        base_dir: str,
        *,
        neutral: dict[str, tuple[str, ...]] | None = None,
        also_read: frozenset[str] = frozenset(),
    ) -> None:
        """``neutral``: nodes the schema refused (spec._partial), left out of ``doc`` but whose
        declared outputs stay produced; ``also_read``: tensors something left out reads."""
        self.doc = doc
        self.raw: dict = doc.data  # type: ignore[assignment]
        self.base_dir = base_dir
        self.neutral = neutral or {}
        self.also_read = also_read
        self.diags: list[Diagnostic] = []
        self.g = GraphBuilder()  # who produces each tensor, tensor infos, what is wrong

    def error(self, path: tuple, msg: str, key: bool = False) -> None:
        self.diags.append(self.doc.diag(path, msg, key=key))

    def warn(self, path: tuple, msg: str, key: bool = False) -> None:
        self.diags.append(self.doc.diag(path, msg, severity="warning", key=key))

    # -- data -------------------------------------------------------------------------------
    def data(self) -> DataSpec:
        raw = DATA.resolve(self.raw.get("data"))
        dataset = self.choice(DATASETS, raw["dataset"])
        name = dataset.name
        arrays = {}
        try:
            arrays = dataset.instance.arrays({**dataset.config.as_dict(), "_base_dir": self.base_dir})
        except Exception as exc:
            self.error(("data", "dataset"), f"dataset {name}: {exc}")
        sampler = self.choice(SAMPLERS, raw["sampler"])
        sname, scfg = sampler.name, sampler.config
        fields = {}
        for fname, f in (raw["fields"] or {}).items():
            f = FIELD.resolve(f)
            fs = FieldSpec(
                name=fname,
                source=f["from"] if isinstance(f["from"], str) else tuple(f["from"]),
                dtype=f["dtype"],
                scale=tuple(f["scale"]) if f["scale"] is not None else None,
                shape=tuple(f["shape"]) if f["shape"] is not None else None,
                classes=f["classes"],
                one_hot=f["one_hot"],
                encode=f["encode"],
                where=dict(f["where"] or {}),
            )
            fields[fname] = fs
            self.produce(fname, Field(fname), ("data", "fields", fname))
            self.infos[fname] = self.field_info(fs, arrays, ("data", "fields", fname), bool(arrays))
        if sampler.component.grouped:
            fields.setdefault("vary", FieldSpec(name="vary", source="vary", dtype="int64"))
            self.produce("vary", Field("vary"), ("data", "sampler"))
            self.infos["vary"] = TensorInfo((), "int64", classes=len(scfg.get("vary") or []) or None)
            for i, v in enumerate(scfg.get("vary") or []):
                if arrays and v not in arrays:
                    self.error(
                        ("data", "sampler", sname, "vary", i),
                        f"dataset {name} has no factor '{v}'{did_you_mean(v, arrays)}",
                    )
        return DataSpec(
            dataset=dataset,
            split=dict(raw["split"]),
            fields=fields,
            batch=raw["batch"],
            test_batch=raw["test_batch"],
            sampler=sampler,
            drop_last=raw["drop_last"],
        )

    @staticmethod
    def choice(registry: Registry, raw: Any) -> Choice:
        """``name`` or ``{name: params}`` (or ``{name: scalar}`` for a one-parameter
        shorthand, e.g. ``{npz: path}``) as the chosen entry and its typed config."""
        name, cfg = (raw, {}) if isinstance(raw, str) else next(iter(raw.items()))
        if not isinstance(cfg, dict):
            cfg = {getattr(registry[name], "shorthand", "path"): cfg}
        return registry.choose(name, cfg)

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
    @property
    def producers(self) -> dict:
        """tensor -> its producer (graph.Field | Latent | Node, and scoped EntryInput)."""
        return self.g.producers

    @property
    def infos(self) -> dict[str, TensorInfo]:
        return self.g.infos

    def produce(self, tensor: str, producer, path: tuple) -> None:
        self.g.produce(tensor, producer, path)

    def _who(self, tensor: str) -> str:
        return self.producers[tensor].describe()

    def located(self, path: tuple) -> tuple:
        """The longest prefix of ``path`` that is in the document (``out: h`` has no ``[0]``)."""
        cur: Any = self.raw
        for i, p in enumerate(path):
            listed = isinstance(cur, list) and isinstance(p, int) and p < len(cur)
            if not (p in cur if isinstance(cur, dict) else listed):
                return tuple(path[:i])
            cur = cur[p]
        return tuple(path)

    def report(self, problems: list[Problem]) -> None:
        """The graph's problems as located diagnostics."""
        for pr in problems:
            msg = pr.message + (f" (line {self.doc.pos(pr.related, key=True)[0]})" if pr.related is not None else "")
            self.diags.append(self.doc.diag(self.located(pr.path), msg, severity=pr.severity, key=pr.key))
        problems.clear()

    def latents(self) -> dict[str, LatentInfo]:
        out = {}
        for name, raw in (self.raw.get("latents") or {}).items():
            table = raw.get("table", LATENT.default("table"))
            lat = LATENT.resolve(raw, **(TABLE_DEFAULTS if table else {}))
            out[name] = LatentInfo(
                name,
                lat["dim"],
                prior=lat["prior"],
                components=lat["components"],
                fit_from=lat["fit_from"],
                table=bool(table) or isinstance(table, dict),
                index=table.get("index") if isinstance(table, dict) else None,
                project=None if lat["project"] == "none" else lat["project"],
                radius=lat["radius"],
                init=lat["init"],
                init_scale=lat["init_scale"],
                candidates=lat["candidates"],
                groups={g: tuple(v) for g, v in (lat["groups"] or {}).items()},
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

    def raw_at(self, path: tuple) -> Any:
        cur: Any = self.raw
        for p in path:
            try:
                cur = cur[p]
            except (KeyError, IndexError, TypeError):
                return None
        return cur

    # -- objective, training, export -----------------------------------------------------------
    def term(self, name: str, raw: dict, path: tuple, latents) -> TermSpec:
        cls = TERMS[raw["term"]]
        params = {k: v for k, v in raw.items() if k != "term" and k not in {p.name for p in TERM.params}}
        common = TERM.resolve(raw)
        weight = common["weight"]
        t = TermSpec(
            name=name,
            term=raw["term"],
            inputs=as_names(common["in"]),
            cfg=cls.configure(params),
            weight=self.schedule(weight) if isinstance(weight, dict) else weight,
            stages=tuple(common["stages"]) if common["stages"] is not None else None,
            path=path,
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

    @staticmethod
    def schedule(raw: dict) -> Choice:
        """``{schedule: name, params...}`` as the chosen schedule and its typed config."""
        return SCHEDULES.choose(raw["schedule"], {k: v for k, v in raw.items() if k != "schedule"})

    def optimizer(self, raw: dict, path: tuple, names: set[str]) -> Choice:
        name = raw.get("name", DEFAULT_OPTIMIZER)
        opt = OPTIMIZERS.choose(name, {k: v for k, v in raw.items() if k != "name"})
        for g in opt.config.get("groups") or {}:
            if g not in names:
                self.error(path + ("groups", g), f"no node or latent named '{g}'{did_you_mean(g, names)}", key=True)
        return opt

    def train(self, nodes: dict[str, NodeSpec], latents, objective: dict[str, TermSpec]) -> TrainSpec:
        raw = TRAIN.resolve(self.raw.get("train"))
        trainables = {n.name for n in nodes.values() if n.kind == "module" and MODULES[n.type].has_params} | {
            l.name for l in latents.values() if l.table
        }
        names = set(nodes) | set(latents)
        stages = []
        default_opt = self.optimizer(raw["optimizer"], ("train", "optimizer"), names)
        if raw["stages"] is None:
            stages.append(
                StageSpec(
                    name="train",
                    trainable=tuple(sorted(trainables)),
                    terms=tuple(objective),
                    optimizer=default_opt,
                    epochs=raw["epochs"],
                    steps=raw["steps"],
                    schedule=self.schedule(raw["schedule"]) if raw["schedule"] is not None else None,
                    clip_grad=raw["clip_grad"],
                )
            )
        seen = set()
        for i, s in enumerate(raw["stages"] or []):
            path = ("train", "stages", i)
            if s["name"] in seen:
                self.error(path + ("name",), f"two stages named '{s['name']}'")
            seen.add(s["name"])
            fits_prior = s.get("fit") in FITTED_PRIORS
            if fits_prior and (s.get("epochs") or s.get("steps")):
                key = "epochs" if s.get("epochs") else "steps"
                self.error(
                    path + (key,),
                    f"a `fit: {s['fit']}` stage fits a prior and trains nothing; train in a stage of its own",
                )
            if fits_prior and not any(lat.prior == s["fit"] for lat in latents.values()):
                self.error(
                    path + ("fit",),
                    f"no latent has `prior: {s['fit']}` for this stage to fit; give one, e.g. "
                    f"`latents: {{z: {{dim: 8, prior: {s['fit']}}}}}`",
                )
            for j, t in enumerate(s.get("trainable", [])):
                if fits_prior:
                    if t not in latents or latents[t].prior != s["fit"]:
                        self.error(
                            path + ("trainable", j),
                            f"`fit: {s['fit']}` fits the prior of latents with `prior: {s['fit']}`; "
                            + (f"'{t}' has prior {latents[t].prior}" if t in latents else f"no latent named '{t}'")
                            + did_you_mean(t, [l for l in latents if latents[l].prior == s["fit"]]),
                        )
                elif t not in names:
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
            st = STAGE.resolve(
                s,
                optimizer=None,
                trainable=sorted(l for l in latents if latents[l].prior == s["fit"])
                if fits_prior
                else sorted(trainables),
                terms=[t for t, ts in objective.items() if ts.stages is None or s["name"] in ts.stages],
                epochs=0 if s.get("fit") else raw["epochs"],
            )
            opt = (
                self.optimizer(st["optimizer"], path + ("optimizer",), names)
                if st["optimizer"] is not None
                else default_opt
            )
            stages.append(
                StageSpec(
                    name=st["name"],
                    trainable=tuple(st["trainable"]),
                    terms=tuple(st["terms"]),
                    optimizer=opt,
                    epochs=st["epochs"],
                    steps=st["steps"],
                    fit=st["fit"],
                    schedule=self.schedule(st["schedule"]) if st["schedule"] is not None else None,
                    clip_grad=st["clip_grad"],
                )
            )
        self.fitted_priors(latents, stages)
        stage_names = {s.name for s in stages}
        for t in objective.values():
            for j, sn in enumerate(t.stages or ()):
                if sn not in stage_names:
                    self.error(t.path + ("stages", j), f"no stage named '{sn}'{did_you_mean(sn, stage_names)}")
        return TrainSpec(
            stages=tuple(stages),
            amp=raw["amp"],
            compile=raw["compile"],
            table_updates=raw["table_updates"],
            eval_every=raw["eval_every"],
            samples_every=raw["samples_every"],
            log_every=raw["log_every"],
            checkpoint_every=raw["checkpoint_every"],
            track=tuple((t, {}) if isinstance(t, str) else next(iter(t.items())) for t in raw.get("track") or ()),
        )

    def fitted_priors(self, latents: dict[str, LatentInfo], stages: list[StageSpec]) -> None:
        """A gaussian or gmm prior needs a stage that fits it, after the codes exist, from a
        tensor of the latent's size; `components` and `fit_from` belong to fitted priors only."""
        fitted = {t for st in stages if st.fit in FITTED_PRIORS for t in st.trainable}
        for name, lat in latents.items():
            raw, path = self.raw["latents"][name], ("latents", name)
            if lat.prior not in FITTED_PRIORS:
                for key in ("components", "fit_from"):
                    if key in raw:
                        self.error(
                            path + (key,),
                            f"`{key}` belongs to a fitted prior (gaussian, gmm); '{name}' has prior {lat.prior}",
                            key=True,
                        )
                continue
            if lat.prior != "gmm" and "components" in raw:
                self.error(path + ("components",), "`components` belongs to a gmm prior", key=True)
            if name not in fitted:
                self.error(
                    path + ("prior",),
                    f"nothing fits the {lat.prior} prior of '{name}': add a stage "
                    f"`{{name: prior, fit: {lat.prior}}}` after the stages that train its codes",
                )
            src = lat.fit_from
            if src is not None:
                if src not in self.producers:
                    self.error(path + ("fit_from",), f"no tensor named '{src}'{did_you_mean(src, self.producers)}")
                elif (shape := self.infos.get(src, TensorInfo()).shape) is not None and tuple(shape) != (lat.dim,):
                    self.error(
                        path + ("fit_from",),
                        f"'{src}' has shape {list(shape)} per example; the prior of '{name}' needs [{lat.dim}]",
                    )

    def export(self, nodes, latents, objective) -> dict[str, EntrySpec]:
        out = {}
        for name, raw in (self.raw.get("export") or {}).items():
            path = ("export", name)
            kind = self.entry_kind(name, raw, path)
            kind_path = path + ("kind",) if "kind" in raw else path
            raw = ENTRY.resolve(raw)
            ins, outs = tuple(raw["in"] or ()), tuple(raw["out"] or ())
            ok = True
            local = {t: ENTRY_INPUT.resolve(d) for t, d in (raw["inputs"] or {}).items()}
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
                rng = decl["range"] or ((0.0, 1.0) if decl["meaning"] == "mask" else None)
                self.infos[t] = TensorInfo(tuple(decl["shape"]), decl["dtype"], range=tuple(rng) if rng else None)
            for key, names in (("in", ins), ("out", outs)):
                for i, t in enumerate(names):
                    if t not in self.producers and t not in local:
                        hint = " (declare an entry-only input under `inputs:` with its shape)" if key == "in" else ""
                        self.error(path + (key, i), f"undefined tensor '{t}'{did_you_mean(t, self.producers)}{hint}")
                        ok = False
            opt = raw["optimize"]
            terms = []
            if kind in OPTIMIZE_KINDS and opt is None:
                self.error(
                    kind_path,
                    f"an entry of kind {kind} optimises a code: give it `optimize:` (the latent) and `terms:`",
                    key=kind_path == path,
                )
            elif kind is not None and kind not in OPTIMIZE_KINDS and opt is not None:
                self.error(
                    kind_path,
                    f"an `optimize:` entry is of kind {', '.join(OPTIMIZE_KINDS[:-1])} or {OPTIMIZE_KINDS[-1]}, not {kind}",
                    key=kind_path == path,
                )
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
                        with self.g.scope(dict.fromkeys(local, EntryInput(name))):
                            terms.append(self.term(f"{name}_{j}", t, path + ("terms", j), latents))
                if not raw.get("terms"):
                    self.error(path, "an `optimize:` entry needs `terms:` (what to minimise)")
            elif raw.get("terms"):
                self.error(path + ("terms",), "`terms:` only applies to an `optimize:` entry")
            drawn = tuple(raw["prior"] or ())
            ok = self.entry_prior(path, drawn, ins, opt, latents) and ok
            if ok:
                self.check_reach(name, ins, outs, opt, terms, nodes, latents, drawn)
            out[name] = EntrySpec(
                name=name,
                kind=kind or "",
                inputs=ins,
                outputs=outs,
                optimize=opt,
                terms=tuple(terms),
                prior=drawn,
                steps=raw["steps"],
                lr=raw["lr"],
                starts=raw["starts"],
                iterations=raw["iterations"],
                local={
                    t: InputSpec(
                        shape=tuple(d["shape"]),
                        dtype=d["dtype"],
                        meaning=d["meaning"],
                        range=tuple(d["range"]) if d["range"] is not None else None,
                    )
                    for t, d in local.items()
                },
            )
        return out

    def entry_kind(self, name: str, raw: dict, path: tuple) -> str | None:
        """What the entry does: its `kind:`, else its name when that is a kind."""
        kind = raw.get("kind")
        if kind is None and name in ENTRY_KINDS:
            return name
        if kind is None:
            self.error(
                path,
                f"entry '{name}' needs `kind:` (what it does): its name is not a kind"
                f"{did_you_mean(name, ENTRY_KINDS)}; kinds: {', '.join(ENTRY_KINDS)}",
                key=True,
            )
        return kind

    def entry_prior(self, path: tuple, drawn: tuple[str, ...], ins, opt, latents) -> bool:
        """An entry's `prior:` names latents that have a prior and that it does not take."""
        ok = True
        for j, t in enumerate(drawn):
            where = path + ("prior", j)
            lat = latents.get(t)
            if lat is None:
                self.error(where, f"prior: '{t}' is not a latent{did_you_mean(t, latents)}")
            elif lat.prior == "none" or (lat.table and lat.prior not in FITTED_PRIORS):
                what = "a latent table" if lat.table else "declared with `prior: none`"
                self.error(where, f"prior: latent '{t}' has no prior to draw from ({what})")
            elif t in ins or t == opt:
                self.error(where, f"prior: latent '{t}' is also an input of this entry; drop it from one")
            elif drawn.index(t) != j:
                self.error(where, f"prior: latent '{t}' is listed twice")
            else:
                continue
            ok = False
        return ok

    def check_reach(self, name, ins, outs, opt, terms, nodes, latents, drawn=()) -> None:
        """Plan the entry as the exporter will: what its inputs cannot reach is an error here."""
        needed = [t for t in outs if t != opt] + [t for term in terms for t in term.inputs]
        try:
            p = plan(
                self.g.graph(nodes, latents), dict.fromkeys(needed), ins, training=False, variable=opt, prior=drawn
            )
        except PlanError as exc:
            for m in exc.missing:
                if isinstance(m.producer, Field):
                    fix = "add it to `in`"
                    if m.via is not None:  # the latent's encoder reads it: draw the latent instead?
                        fix = f"add `prior: [{m.via}]` to draw {m.via} from its prior, or add `{m.tensor}` to `in`"
                    self.error(
                        ("export", name, "in"),
                        f"entry '{name}' needs data field '{m.tensor}' but it is not among its inputs; {fix}",
                    )
                elif isinstance(m.producer, Latent):
                    self.error(
                        ("export", name, "in"),
                        f"entry '{name}' needs latent table '{m.tensor}': give it as an input or `optimize: {m.tensor}`",
                    )
                # else an undefined tensor: reported where it is named
        except ShapeError as exc:  # a stochastic node whose noise shape is unknown
            self.error(("export", name), f"entry '{name}': {exc}")
        else:
            for j, t in enumerate(drawn):
                if t not in p.prior_cut:
                    self.error(
                        ("export", name, "prior", j),
                        f"prior: entry '{name}' never uses latent '{t}' (its outputs do not depend on it)",
                    )

    def dead_nodes(self, nodes: dict[str, NodeSpec], objective, export) -> None:
        used = {t for n in nodes.values() for t in n.reads} | self.also_read
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
            self.produce(name, Latent(name), ("latents", name))
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
        for name, outs in self.neutral.items():  # no "undefined tensor" downstream of them
            for t in outs:
                if isinstance(self.producers.get(t), Latent):
                    self.producers[t] = Node(name)
                else:
                    self.produce(t, Node(name), ("nodes", name, "out"))
        nodes = self.resolve_uses(self.parse_nodes(self.raw.get("nodes") or {}, ("nodes",)), {})
        order = self.g.add_nodes(nodes, latents)
        nodes = {n: nodes[n] for n in order}  # topological order, ties in spec order
        objective = {
            n: self.term(n, t, ("objective", n), latents) for n, t in (self.raw.get("objective") or {}).items()
        }
        train = self.train(nodes, latents, objective)
        export = self.export(nodes, latents, objective)
        self.dead_nodes(nodes, objective, export)
        self.report(self.g.problems)
        if any(d.severity == "error" for d in self.diags):
            return None
        return Spec(
            name=self.raw["name"],
            seed=self.raw.get("seed", TOP.default("seed")),
            description=self.raw.get("description", TOP.default("description")),
            data=data,
            latents=latents,
            nodes=nodes,
            objective=objective,
            train=train,
            export=export,
            infos=self.infos,
            producers=self.producers,
            text=self.doc.text,
            file=self.doc.file,
            raw=self.raw,
        )
