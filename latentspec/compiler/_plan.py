"""Which nodes a graph needs and what it takes as inputs (torch-free).

A *plan* is the sub-graph that computes some tensors, cut at given inputs: the nodes in
order, and the placeholders (fields, entry inputs, explicit noise) it takes.
"""

from __future__ import annotations

import dataclasses

from latentspec.components import MODULES, OPS
from latentspec.components._node import Context, Noise, TensorInfo
from latentspec.spec._model import NodeSpec, Spec


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


def node_component(n: NodeSpec):
    return (MODULES[n.type] if n.kind in ("module", "use") else OPS[n.type])()


def node_context(spec: Spec, n: NodeSpec) -> Context:
    ins = n.reads
    return Context(n.name, n.cfg, ins, n.outputs, tuple(spec.infos.get(t, TensorInfo()) for t in ins), spec.latents)


def node_noise(spec: Spec, n: NodeSpec) -> list[Noise]:
    if n.body is not None:
        return [x for b in n.body.values() if b.kind == "op" for x in node_noise(spec, b)]
    if n.kind != "op":
        return []
    return node_component(n).noise(node_context(spec, n))


def plan(
    spec: Spec, outputs, inputs=(), *, training: bool, variable: str | None = None, loop_steps_input: bool = False
) -> Plan:
    """The nodes and placeholders that compute ``outputs`` from ``inputs``.

    training: fields are available, training-only nodes run, all latents are computed.
    export: only ``inputs`` (and ``variable``) are given; training-only nodes are the
    identity; latents whose producer cannot be reached from the inputs come from their prior.
    """
    given = set(inputs) | ({variable} if variable else set())
    producers = spec.producers
    needed_nodes: set[str] = set()
    skipped: set[str] = set()
    prior_cut: set[str] = set()
    placeholders: dict[str, Placeholder] = {}

    def reaches(t: str, seen: set) -> bool:
        if t in given or (training and producers.get(t) == "field"):
            return True
        if t in seen:
            return False
        seen.add(t)
        p = producers.get(t)
        if p in spec.nodes:
            return any(reaches(x, seen) for x in spec.nodes[p].reads)
        return False

    stack = list(outputs)
    visited = set()
    while stack:
        t = stack.pop()
        if t in visited:
            continue
        visited.add(t)
        if t in given:
            continue
        p = producers.get(t)
        lat = spec.latents.get(t)
        if p == "field":
            if not training:
                raise KeyError(f"needs data field '{t}'")
            continue
        if p == "latent":
            if lat.table and training:
                stack.append(lat.index)
            elif lat.table:
                raise KeyError(f"needs latent table '{t}' as an input")
            else:
                prior_cut.add(t)
            continue
        n = spec.nodes[p]
        if lat is not None and lat.prior != "none" and not training and not any(reaches(x, set()) for x in n.reads):
            prior_cut.add(t)
            continue
        if (
            not training
            and n.kind == "op"
            and n.body is None
            and node_component(n).training_only(node_context(spec, n))
        ):
            skipped.add(n.name)
            needed_nodes.add(n.name)
            stack.append(n.inputs[0])  # the identity outside training
            continue
        needed_nodes.add(n.name)
        stack.extend(n.reads)

    order = [name for name in spec.nodes if name in needed_nodes]
    # placeholders: inputs in the given order, fields, the variable, prior noise, node noise
    for t in inputs:
        placeholders[t] = Placeholder(t, t, "input", spec.infos[t].shape, spec.infos[t].dtype)
    if variable:
        placeholders[variable] = Placeholder(variable, variable, "variable", spec.infos[variable].shape)
    if training:
        used = {x for name in order for x in spec.nodes[name].reads} | set(outputs)
        used |= {spec.latents[t].index for t in used if t in spec.latents and spec.latents[t].table}
        for f in spec.data.fields:
            if f in used and f not in placeholders:
                info = spec.infos[f]
                placeholders[f] = Placeholder(f, f, "field", info.shape, info.dtype)
    noise: list[Placeholder] = []
    for t in sorted(prior_cut, key=list(spec.latents).index):
        lat = spec.latents[t]
        dist = "uniform" if lat.prior == "uniform" else "normal"
        noise.append(
            Placeholder("eps", t, "noise", (lat.dim,), "float32", dist, lat.candidates if training else 1, latent=t)
        )
    for name in order:
        if name in skipped:
            continue
        for x in node_noise(spec, spec.nodes[name]):
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
    for p in noise:
        counts[p.name] = counts.get(p.name, 0) + 1
    taken = set(spec.producers) | set(placeholders)
    for p in noise:
        name = p.name
        if counts[name] > 1 or name in taken:
            name = f"{p.name}_{p.latent or p.node}"
        placeholders[p.tensor] = dataclasses.replace(p, name=name)
    loops = frozenset(n for n in order if spec.nodes[n].body is not None) if loop_steps_input else frozenset()
    if loops:
        placeholders["steps"] = Placeholder("steps", "steps", "steps", (), "int64")
    return Plan(
        tuple(order), tuple(placeholders.values()), tuple(outputs), frozenset(skipped), frozenset(prior_cut), loops
    )
