"""Spec -> torch.fx GraphModule whose placeholders and nodes carry the spec's names."""

from __future__ import annotations

import keyword
import operator
from collections.abc import Mapping

import torch
from torch import fx, nn

from latentspec.errors import UserError
from latentspec.graph import (
    FITTED_PRIORS,
    STEPS,
    NodeSpec,
    Plan,
    body_order,
    component_key,
    node_component,
    node_context,
    node_noise,
    plan,
)
from latentspec.spec._model import Spec


class CompileError(UserError):
    """A spec that validates but cannot be compiled as asked (e.g. python modules not allowed)."""


# names a submodule cannot take: what a GraphModule already has (forward, training, graph, code,
# ...) and Python keywords, which the generated ``self.<name>(...)`` cannot spell
_TAKEN = frozenset(dir(fx.GraphModule(nn.Module(), fx.Graph()))) | frozenset(keyword.kwlist)


def _attr(name: str) -> str:
    """Module attribute name for a node or latent table: its own name unless that is taken.

    Taken names get a trailing ``_``, and so does any name that is a taken name plus
    underscores (``training_`` -> ``training__``), so no two spec names share an attribute.
    """
    return f"{name}_" if name.startswith("_") or name.rstrip("_") in _TAKEN else name


def _value(name: str) -> str:
    """The fx value name of a tensor or node: its own. fx itself renames keywords and builtins
    (``sum`` -> ``sum_1``) but not ``self``, the generated forward's first parameter."""
    return "self_1" if name == "self" else name


PRIORS = "_priors"  # the submodule of fitted latent priors


def table_key(name: str) -> str:
    """The state-dict key of latent table ``name``'s codes, (rows, dim): how a checkpoint tells
    the table's size without the data."""
    return f"layers.{_attr(name)}.weight"


class LoopModule(nn.Module):
    """``op: loop``: runs its body `steps` times, threading the state tensors.

    With ``steps`` given as a 0-d int64 tensor (exported graphs) it runs as a
    ``while_loop`` higher-order op, which exports to an ONNX ``Loop`` with the trip count
    as a graph input; otherwise as a Python loop of the spec's `steps` (training).
    """

    def __init__(self, node: NodeSpec, fns: dict[str, tuple[str | None, object]], steps: int) -> None:
        super().__init__()
        self.node = node
        self.state_names = tuple(node.state)
        self.inputs = node.reads
        self.steps = steps
        # shared modules are the root's; a plain list keeps them out of this module's state_dict
        self._fns = [fns]
        self.order, cycle = body_order(node)  # the validator refuses a body cycle
        if cycle:
            raise CompileError(f"loop '{node.name}': its body has a cycle outside the state: {' -> '.join(cycle)}")

    def _iterate(self, state: tuple, outer: dict) -> tuple:
        env = {**outer, **dict(zip(self.state_names, state))}
        new = {}
        fns = self._fns[0]
        for b in self.order:
            method, fn = fns[b.name]
            args = [env[t] for t in b.inputs]
            out = getattr(fn, method)(*args) if method else fn(*args)
            outs = (out,) if len(b.outputs) == 1 else tuple(out)
            for t, v in zip(b.outputs, outs):
                (new if t in self.state_names else env).__setitem__(t, v)
        return tuple(new[s] for s in self.state_names)

    def forward(self, *args: torch.Tensor, steps: torch.Tensor | None = None) -> torch.Tensor | tuple:
        outer = dict(zip(self.inputs, args))
        state = tuple(outer[self.node.state[s]] for s in self.state_names)
        if steps is None:
            for _ in range(self.steps):
                state = self._iterate(state, outer)
        else:
            from torch._higher_order_ops.while_loop import while_loop

            def cond(i, *s):
                return i < steps

            def body(i, *s):
                return (i + 1, *(x.clone() for x in self._iterate(s, outer)))

            _, *state = while_loop(cond, body, (torch.zeros((), dtype=torch.int64), *state))
            state = tuple(state)
        return state[0] if len(state) == 1 else state


class CompiledModel(nn.Module):
    """The trainable model of a spec: one submodule per parameter-owning node and latent table.

    ``graph(...)`` builds a GraphModule for any cut of the tensor graph; ``training_graph``
    is the one the trainer runs, ``entry(name)`` the one an export entry point needs.
    """

    def __init__(self, spec: Spec, allow_python: bool = False, table_sizes: Mapping[str, int] | None = None) -> None:
        super().__init__()
        self.spec = spec
        #: rows of each latent table; None: not given (the table is empty until a run sizes it)
        self.table_sizes: dict[str, int | None] = {
            name: (table_sizes or {}).get(name) for name, lat in spec.latents.items() if lat.table
        }
        self.layers = nn.Module()  # holds the node modules as attributes named after the nodes
        self.fns: dict[str, tuple[str | None, object]] = {}
        self._graphs: dict = {}
        from latentspec.components import MODULES

        for name, lat in spec.latents.items():
            if lat.table:
                ctx_cfg = {
                    "size": self.table_sizes[name] or 0,
                    "dim": lat.dim,
                    "project": lat.project or "none",
                    "radius": lat.radius,
                    "init": lat.init,
                    "init_scale": lat.init_scale,
                }
                from latentspec.components._node import Context, TensorInfo

                mod = MODULES["latent_table"]().build(
                    Context(
                        name,
                        MODULES["latent_table"].resolve(ctx_cfg),
                        (lat.index,),
                        (name,),
                        (TensorInfo((), "int64"),),
                        spec.latents,
                    )
                )
                self.layers.add_module(_attr(name), mod)
        self._add_priors()
        self._add_nodes(spec.nodes, allow_python)

    def _add_priors(self) -> None:
        """Latents with a fitted prior (gaussian, gmm) own its parameters as buffers, under
        ``layers._priors`` (no node's attribute: ``_attr`` gives ``_``-names a trailing ``_``)."""
        from latentspec.nn import modules as M

        fitted = {name: lat for name, lat in self.spec.latents.items() if lat.prior in FITTED_PRIORS}
        if not fitted:
            return
        self.layers.add_module(PRIORS, nn.Module())
        for name, lat in fitted.items():
            mod = M.GaussianPrior(lat.dim) if lat.prior == "gaussian" else M.GMMPrior(lat.dim, lat.components)
            getattr(self.layers, PRIORS).add_module(_attr(name), mod)

    def prior_of(self, name: str) -> nn.Module:
        """The fitted prior module of latent ``name`` (``fit(codes, seed)``, ``forward(eps[, u])``)."""
        return getattr(getattr(self.layers, PRIORS), _attr(name))

    def _add_nodes(self, nodes: dict[str, NodeSpec], allow_python: bool) -> None:
        def flat(ns):
            for n in ns.values():
                yield n
                if n.body is not None:
                    yield from flat(n.body)

        every = list(flat(nodes))
        for n in every:  # parameter owners first: `use:` and loop bodies refer to them
            if n.kind == "module":
                if n.type == "python" and not allow_python:
                    raise CompileError(
                        f"node '{n.name}' runs Python code ({n.cfg.get('class')}); pass --allow-python to allow it"
                    )
                self.layers.add_module(_attr(n.name), node_component(n).build(node_context(self.spec.graph, n)))
        for n in every:
            if n.kind == "module":
                self.fns[n.name] = (None, getattr(self.layers, _attr(n.name)))
            elif n.kind == "use":
                self.fns[n.name] = (n.method, getattr(self.layers, _attr(n.owner)))
            elif n.body is None:
                self.layers.add_module(_attr(n.name), node_component(n).build(node_context(self.spec.graph, n)))
                self.fns[n.name] = (None, getattr(self.layers, _attr(n.name)))
        for n in every:
            if n.body is not None:
                self.layers.add_module(_attr(n.name), LoopModule(n, self.fns, n.cfg.get("steps", 2)))
                self.fns[n.name] = (None, getattr(self.layers, _attr(n.name)))

    def module_of(self, name: str) -> nn.Module:
        """The module that owns the parameters of node or latent table ``name``."""
        n = self.spec.nodes.get(name)
        return getattr(self.layers, _attr(n.owner if n is not None else name))

    # -- graphs --------------------------------------------------------------------------------
    def graph(
        self,
        outputs,
        inputs=(),
        *,
        training: bool,
        variable: str | None = None,
        loop_steps_input: bool = False,
        as_dict: bool | None = None,
        prior: tuple[str, ...] = (),
    ) -> tuple[fx.GraphModule, Plan]:
        key = (tuple(outputs), tuple(inputs), training, variable, loop_steps_input, as_dict, tuple(prior))
        if key not in self._graphs:
            p = plan(
                self.spec.graph,
                outputs,
                inputs,
                training=training,
                variable=variable,
                loop_steps_input=loop_steps_input,
                prior=prior,
            )
            self._graphs[key] = (self._build(p, training if as_dict is None else as_dict), p)
        return self._graphs[key]

    @property
    def training_graph(self) -> tuple[fx.GraphModule, Plan]:
        """All tensors the objective uses, from fields and noise."""
        spec = self.spec
        outs = list(dict.fromkeys(t for term in spec.objective.values() for t in term.inputs))
        return self.graph(outs, training=True)

    def entry(self, name: str) -> tuple[fx.GraphModule, Plan]:
        """The graph of export entry point ``name``: its inputs (then explicit noise) -> its outputs."""
        e = self.spec.export[name]
        if e.optimize:
            outs = list(
                dict.fromkeys([t for t in e.outputs if t != e.optimize] + [t for term in e.terms for t in term.inputs])
            )
            return self.graph(outs, e.inputs, training=False, variable=e.optimize, as_dict=True, prior=e.prior)
        has_loop = any(
            self.spec.nodes[n].body is not None
            for n in plan(self.spec.graph, e.outputs, e.inputs, training=False, prior=e.prior).nodes
        )
        return self.graph(e.outputs, e.inputs, training=False, loop_steps_input=has_loop, prior=e.prior)

    def _build(self, p: Plan, as_dict: bool) -> fx.GraphModule:
        spec = self.spec
        g = fx.Graph()
        env: dict[str, fx.Node] = {}
        for ph in p.placeholders:
            env[ph.tensor] = g.placeholder(_value(ph.name))
        for t in p.prior_cut:  # a fitted prior maps the standard noise to the latent
            lat = spec.latents[t]
            if lat.prior in FITTED_PRIORS:
                args = (env[t], env[component_key(t)]) if lat.prior == "gmm" else (env[t],)
                env[t] = g.create_node("call_module", f"{PRIORS}.{_attr(t)}", args, name=_value(t))

        def get(t: str) -> fx.Node:
            if t not in env:
                lat = spec.latents.get(t)
                if lat is not None and lat.table:
                    env[t] = g.create_node("call_module", _attr(t), (get(lat.index),), name=_value(t))
                else:
                    raise CompileError(f"tensor '{t}' has no value in this graph")
            return env[t]

        for name in p.nodes:
            n = spec.nodes[name]
            if name in p.skipped:
                env[n.outputs[0]] = get(n.inputs[0])
                continue
            ins = n.reads
            args = [get(t) for t in ins] + [env[f"{name}:{x.suffix}"] for x in node_noise(spec.graph, n)]
            kwargs = {"steps": env[STEPS]} if name in p.loops else {}
            target = _attr(n.owner if n.kind == "use" else name)
            single = len(n.outputs) == 1
            if n.method:
                mod = g.get_attr(target)
                call = g.create_node(
                    "call_method", n.method, (mod, *args), kwargs, name=_value(n.outputs[0] if single else name)
                )
            else:
                call = g.create_node(
                    "call_module", target, tuple(args), kwargs, name=_value(n.outputs[0] if single else name)
                )
            if single:
                env[n.outputs[0]] = call
            else:
                for i, t in enumerate(n.outputs):
                    env[t] = g.create_node("call_function", operator.getitem, (call, i), name=_value(t))
        outs = {t: get(t) for t in p.outputs}
        g.output(outs if as_dict else (tuple(outs.values()) if len(outs) > 1 else next(iter(outs.values()))))
        gm = fx.GraphModule(self.layers, g, class_name=spec.name if spec.name.isidentifier() else "Model")
        return gm

    def forward(self, *args: torch.Tensor) -> dict[str, torch.Tensor]:
        gm, _ = self.training_graph
        return gm(*args)

    def draw_noise(self, p: Plan, batch: int, generator: torch.Generator, device=None) -> list[torch.Tensor]:
        """Noise tensors for the plan's noise placeholders, drawn from ``generator``."""
        out = []
        for ph in p.placeholders:
            if ph.kind != "noise":
                continue
            shape = (batch * ph.batch_factor, *ph.shape)
            draw = torch.rand if ph.distribution == "uniform" else torch.randn
            out.append(draw(shape, generator=generator, device=device))
        return out


def compile_spec(spec: Spec, allow_python: bool = False, table_sizes: Mapping[str, int] | None = None) -> CompiledModel:
    """Build the model of a validated spec (parameters initialised from the spec's seed).

    ``table_sizes``: rows of each latent table (one code per training example), which only the
    data knows: the trainer passes the training split's sizes, ``load_run`` the checkpoint's.
    A table not given is built empty, so compiling (``latentspec compile``) reads no data.
    """
    torch.manual_seed(spec.seed)
    return CompiledModel(spec, allow_python=allow_python, table_sizes=table_sizes)
