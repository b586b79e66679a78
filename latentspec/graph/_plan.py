"""Which nodes a graph needs and what it takes as inputs.

A *plan* is the sub-graph that computes some tensors, cut at given inputs: the nodes in
order, and the placeholders (fields, entry inputs, explicit noise) it takes. The validator
plans every export entry (what it cannot reach becomes a located error), the compiler builds
its graphs from plans, so what an entry needs is decided here only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from latentspec.components._node import Context, Noise, TensorInfo
from latentspec.errors import UserError
from latentspec.graph._graph import Graph, component
from latentspec.graph._node import NodeSpec
from latentspec.graph._producers import Field, Latent, Node, Producer

STEPS = ":steps"  # the tensor key of a loop's trip-count input (no spec name has a colon)
#: Latent priors fitted by a `fit:` stage: a prior-cut latent is their map of the noise `eps`.
FITTED_PRIORS = ("gaussian", "gmm")


def component_key(latent: str) -> str:
    """The tensor key of the uniform noise that picks a gmm prior's component."""
    return f"{latent}:component"


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """One input of a compiled graph."""

    name: str  # the graph input's name
    tensor: str  # the spec tensor it feeds (for noise: "<node>:<suffix>" or the latent)
    kind: str  # field | input | noise | index | steps | variable
    shape: tuple[int, ...] | None
    dtype: str = "float32"
    distribution: str | None = None  # for noise
    batch_factor: int = 1
    latent: str | None = None
    node: str | None = None  # for node noise: the stochastic node


@dataclasses.dataclass(frozen=True)
class Plan:
    nodes: tuple[str, ...]  # in execution order
    placeholders: tuple[Placeholder, ...]
    outputs: tuple[str, ...]
    skipped: frozenset[str]  # training-only nodes bypassed (export)
    prior_cut: frozenset[str]  # latents fed from their prior
    loops: frozenset[str]  # loop nodes that take a `steps` input


@dataclasses.dataclass(frozen=True)
class Unreachable:
    """A tensor a plan needs that its inputs cannot give."""

    tensor: str
    producer: Producer | None  # a Field (data outside training), a Latent (a table), None (unknown)
    via: str | None = None  # the nearest latent with a prior whose producer needs it: `prior: [via]` cuts it

    def __str__(self) -> str:
        if isinstance(self.producer, Field):
            return f"needs data field '{self.tensor}'"
        if isinstance(self.producer, Latent):
            return f"needs latent table '{self.tensor}' as an input"
        return f"needs tensor '{self.tensor}', which nothing produces"


class PlanError(UserError):
    """The asked outputs cannot be computed from the given inputs; ``missing`` says why."""

    def __init__(self, missing: Iterable[Unreachable]) -> None:
        self.missing = tuple(missing)
        super().__init__("; ".join(str(m) for m in self.missing))


def _fresh(name: str, taken: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2``, ... when a tensor or another input has it."""
    out, i = name, 0
    while out in taken:
        i += 1
        out = f"{name}_{i}"
    return out


def node_component(n: NodeSpec):
    """A fresh instance of the node's registered component."""
    return component(n)()


def node_context(graph: Graph, n: NodeSpec) -> Context:
    ins = n.reads
    return Context(n.name, n.cfg, ins, n.outputs, tuple(graph.infos.get(t, TensorInfo()) for t in ins), graph.latents)  # type: ignore[arg-type]


def node_noise(graph: Graph, n: NodeSpec) -> list[Noise]:
    if n.body is not None:
        return [x for b in n.body.values() if b.kind == "op" for x in node_noise(graph, b)]
    if n.kind != "op":
        return []
    return node_component(n).noise(node_context(graph, n))


def plan(
    graph: Graph,
    outputs: Iterable[str],
    inputs: Iterable[str] = (),
    *,
    training: bool,
    variable: str | None = None,
    loop_steps_input: bool = False,
    prior: Iterable[str] = (),
) -> Plan:
    """The nodes and placeholders that compute ``outputs`` from ``inputs``.

    training: fields are available, training-only nodes run, all latents are computed.
    export: only ``inputs`` (and ``variable``) are given; training-only nodes are the
    identity; latents whose producer cannot be reached from the inputs come from their prior,
    and so do the latents named in ``prior`` (an entry's ``prior:``) even when it can: a
    conditional sampler gives the label its encoder also reads, yet draws the code.
    Raises :class:`PlanError` naming every tensor the inputs cannot reach.
    """
    outputs, inputs = tuple(outputs), tuple(inputs)
    given = set(inputs) | ({variable} if variable else set())
    drawn = set(prior)
    producers, nodes, latents = graph.producers, graph.nodes, graph.latents
    needed_nodes: set[str] = set()
    skipped: set[str] = set()
    prior_cut: set[str] = set()
    missing: list[Unreachable] = []
    placeholders: dict[str, Placeholder] = {}

    def reaches(t: str, seen: set) -> bool:
        p = producers.get(t)
        if t in given or (training and isinstance(p, Field)):
            return True
        if t in seen:
            return False
        seen.add(t)
        if isinstance(p, Node) and p.name in nodes:
            return any(reaches(x, seen) for x in nodes[p.name].reads)
        return False

    # (tensor, via): what is needed past no latent's producer is walked first, so a field a
    # latent's encoder and also something else needs is missing with via None ("add it to `in`")
    stack: list[tuple[str, str | None]] = [(t, None) for t in outputs]
    later: list[tuple[str, str | None]] = []
    visited = set()
    while stack or later:
        t, via = stack.pop() if stack else later.pop()
        if t in visited:
            continue
        visited.add(t)
        if t in given:
            continue
        p = producers.get(t)
        lat = latents.get(t)
        if isinstance(p, Field):
            if not training:
                missing.append(Unreachable(t, p, via))
            continue
        if isinstance(p, Latent):
            if lat.table and training:
                (later if via else stack).append((lat.index, via))
            elif lat.table and lat.prior not in FITTED_PRIORS:
                missing.append(Unreachable(t, p, via))
            else:
                prior_cut.add(t)
            continue
        if not isinstance(p, Node) or p.name not in nodes:  # (a node the schema refused: unknown)
            missing.append(Unreachable(t, p, via))
            continue
        n = nodes[p.name]
        if (
            lat is not None
            and lat.prior != "none"
            and not training
            and (t in drawn or not any(reaches(x, set()) for x in n.reads))
        ):
            prior_cut.add(t)
            continue
        if lat is not None and lat.prior != "none" and not lat.table:
            via = t
        if (
            not training
            and n.kind == "op"
            and n.body is None
            and node_component(n).training_only(node_context(graph, n))
        ):
            skipped.add(n.name)
            needed_nodes.add(n.name)
            # the identity outside training (a node without inputs is reported by the validator)
            (later if via else stack).extend((x, via) for x in n.inputs[:1])
            continue
        needed_nodes.add(n.name)
        (later if via else stack).extend((x, via) for x in n.reads)
    if missing:
        raise PlanError(missing)

    order = [name for name in nodes if name in needed_nodes]
    # placeholders: inputs in the given order, fields, the variable, prior noise, node noise
    for t in inputs:
        info = graph.infos.get(t, TensorInfo())  # unknown only in a spec the validator refuses
        placeholders[t] = Placeholder(t, t, "input", info.shape, info.dtype)
    if variable:
        placeholders[variable] = Placeholder(variable, variable, "variable", graph.infos[variable].shape)
    if training:
        used = {x for name in order for x in nodes[name].reads} | set(outputs)
        used |= {latents[t].index for t in used if t in latents and latents[t].table}
        for f in graph.fields:
            if f in used and f not in placeholders:
                info = graph.infos[f]
                placeholders[f] = Placeholder(f, f, "field", info.shape, info.dtype)
    noise: list[Placeholder] = []
    for t in sorted(prior_cut, key=list(latents).index):
        lat = latents[t]
        dist = "uniform" if lat.prior == "uniform" else "normal"
        factor = lat.candidates if training else 1
        noise.append(Placeholder("eps", t, "noise", (lat.dim,), "float32", dist, factor, latent=t))
        if lat.prior == "gmm":  # u ~ U(0, 1) picks the mixture component (compiler: prior_of)
            noise.append(Placeholder("u", component_key(t), "noise", (1,), "float32", "uniform", factor, latent=t))
    for name in order:
        if name in skipped:
            continue
        for x in node_noise(graph, nodes[name]):
            noise.append(
                Placeholder(
                    x.suffix,
                    f"{name}:{x.suffix}",
                    "noise",
                    x.shape,
                    "float32",
                    x.distribution,
                    x.batch_factor,
                    node=name,
                )
            )
    counts: dict[str, int] = {}
    for ph in noise:
        counts[ph.name] = counts.get(ph.name, 0) + 1
    taken = set(producers) | set(placeholders)  # graph input names never shadow a tensor's
    for ph in noise:
        name = ph.name
        if counts[name] > 1 or name in taken:
            name = f"{ph.name}_{ph.latent or ph.node}"
        name = _fresh(name, taken)
        taken.add(name)
        placeholders[ph.tensor] = dataclasses.replace(ph, name=name)
    loops = frozenset(n for n in order if nodes[n].body is not None) if loop_steps_input else frozenset()
    if loops:
        placeholders[STEPS] = Placeholder(_fresh("steps", taken), STEPS, "steps", (), "int64")
    return Plan(tuple(order), tuple(placeholders.values()), outputs, frozenset(skipped), frozenset(prior_cut), loops)
