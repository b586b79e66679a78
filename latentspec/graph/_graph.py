"""The tensor graph of a spec: who produces each tensor, one topological order, shapes.

:class:`GraphBuilder` is filled in while the validator reads a spec (fields and latents
first, then the nodes) and reports what it finds as :class:`Problem` values; :class:`Graph`
is the finished, read-only result that planning and compiling read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
from collections.abc import Iterator, Mapping

from latentspec.components import MODULES, OPS
from latentspec.components._node import Context, LatentInfo, ShapeError, TensorInfo
from latentspec.errors import did_you_mean
from latentspec.graph._node import NodeSpec
from latentspec.graph._producers import Field, Latent, LoopState, Node, Producer


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something wrong with the graph, at a path into the spec (the validator locates it)."""

    path: tuple
    message: str
    severity: str = "error"  # "error" | "warning"
    key: bool = False  # point at the key rather than the value
    related: tuple | None = None  # another place the message names (a tensor's first producer)


@dataclasses.dataclass(frozen=True)
class Graph:
    """A validated tensor graph: nodes in topological order (ties in spec order)."""

    nodes: Mapping[str, NodeSpec]
    latents: Mapping[str, LatentInfo]
    producers: Mapping[str, Producer]
    infos: Mapping[str, TensorInfo]

    @property
    def fields(self) -> tuple[str, ...]:
        """The data fields, in spec order."""
        return tuple(t for t, p in self.producers.items() if isinstance(p, Field))


def toposort(names: list[str], succ: Mapping[str, set[str]]) -> tuple[list[str], list[str]]:
    """Kahn's algorithm, ties broken by the order of ``names``: (order, []) or ([], a cycle)."""
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
    # a cycle: drop the unsorted nodes that only lead out of the rest (downstream of a cycle),
    # then walk successors from the first one left until a node repeats
    rest = {n for n in names if indeg[n] > 0}
    while dead := {n for n in rest if not succ[n] & rest}:
        rest -= dead
    path, seen, n = [], {}, min(rest, key=rank.__getitem__)
    while n not in seen:
        seen[n] = len(path)
        path.append(n)
        n = min(succ[n] & rest, key=rank.__getitem__)
    return [], path[seen[n] :]


def body_order(loop: NodeSpec) -> tuple[list[NodeSpec], list[str]]:
    """A loop body in execution order: (order, []) or ([], a cycle of body nodes).

    A body node that writes a state does not feed the nodes that read it: they see the state
    of the previous step, so only tensors the body makes afresh are edges.
    """
    body = loop.body or {}
    state = loop.state or {}
    made = {t: b.name for b in body.values() for t in b.outputs if t not in state}
    succ: dict[str, set[str]] = {name: set() for name in body}
    for b in body.values():
        for t in b.inputs:
            if t in made:
                succ[made[t]].add(b.name)
    order, cycle = toposort(list(body), succ)
    return [body[name] for name in order], cycle


def component(n: NodeSpec):
    """The registered class of a node (modules for `module:` and `use:`, ops otherwise)."""
    return MODULES[n.type] if n.kind in ("module", "use") else OPS[n.type]


def _prefixed(name: str, exc: Exception) -> str:
    msg = str(exc)
    return msg if msg.startswith(name) else f"{name}: {msg}"


def _arity(lo: int, hi: int | None) -> str:
    return f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"


class GraphBuilder:
    """Registers producers, orders the nodes and infers every tensor's info in one pass.

    The validator registers fields and latents with :meth:`produce`, then hands the nodes to
    :meth:`add_nodes`; what is wrong accumulates in ``problems`` and the work carries on, so
    one run reports every problem.
    """

    def __init__(self) -> None:
        self.producers: dict[str, Producer] = {}
        self.paths: dict[str, tuple] = {}  # where each tensor is produced
        self.infos: dict[str, TensorInfo] = {}
        self.problems: list[Problem] = []

    def problem(self, path: tuple, message: str, **kw) -> None:
        self.problems.append(Problem(path, message, **kw))

    def produce(self, tensor: str, producer: Producer, path: tuple) -> bool:
        """Register ``tensor``'s producer; False (and a problem) when it already has one."""
        if tensor in self.producers:
            first = self.producers[tensor]
            self.problem(
                path,
                f"tensor '{tensor}' is produced twice: here and by {first.describe()}",
                related=self.paths[tensor],
            )
            return False
        self.producers[tensor] = producer
        self.paths[tensor] = path
        return True

    @contextlib.contextmanager
    def scope(self, producers: Mapping[str, Producer]) -> Iterator[None]:
        """Tensors seen only inside (a loop's states, an entry's own inputs): registered on
        entry, forgotten on exit with whatever was registered within."""
        saved, saved_paths = dict(self.producers), dict(self.paths)
        self.producers.update(producers)
        try:
            yield
        finally:
            self.producers.clear()
            self.producers.update(saved)
            self.paths.clear()
            self.paths.update(saved_paths)

    # -- nodes -------------------------------------------------------------------------------
    def check_names(self, nodes: Mapping[str, NodeSpec], latents: Mapping[str, LatentInfo]) -> None:
        """Node names are unique, loop bodies included, and no node takes a latent table's name:
        weights, `use:`, `trainable` and optimizer `groups` find a node or table by name."""
        seen: dict[str, tuple] = {}

        def walk(ns: Mapping[str, NodeSpec]) -> None:
            for name, n in ns.items():
                if name in seen:
                    self.problem(
                        n.path,
                        f"node names are unique, loop bodies included: '{name}' is taken by another node",
                        key=True,
                        related=seen[name],
                    )
                seen.setdefault(name, n.path)
                if name in latents and latents[name].table:
                    self.problem(
                        n.path,
                        f"node '{name}' has the name of latent table '{name}'; rename one (`trainable` and "
                        "optimizer `groups` name either)",
                        key=True,
                    )
                if n.body is not None:
                    walk(n.body)

        walk(nodes)

    def check_arity(self, n: NodeSpec) -> bool:
        """Does the node take as many inputs and outputs as its component declares?"""
        if n.body is not None:
            for s in n.state or {}:
                if not any(s in b.outputs for b in n.body.values()):
                    self.problem(
                        n.path + ("state", s),
                        f"loop state '{s}' is never updated: a body node must output '{s}'",
                        key=True,
                    )
            if len(n.outputs) != len(n.state or {}):
                self.problem(
                    n.path + ("out",),
                    f"a loop outputs its final states: {len(n.state or {})} state(s) but {len(n.outputs)} output(s)",
                )
                return False
            return True
        cls = component(n)
        ok = True
        for what, count, (lo, hi) in (
            ("inputs", len(n.inputs), cls.n_inputs),
            ("outputs", len(n.outputs), cls.n_outputs),
        ):
            if count < lo or (hi is not None and count > hi):
                self.problem(
                    n.path + ("in" if what == "inputs" else "out",),
                    f"{n.kind if n.kind != 'use' else 'module'} {n.type} takes {_arity(lo, hi)} {what}, got {count}",
                )
                ok = False
        return ok

    def add_nodes(self, nodes: Mapping[str, NodeSpec], latents: Mapping[str, LatentInfo]) -> list[str]:
        """Register the nodes' outputs, check what they read exists and that they form no
        cycle, infer shapes in topological order; returns that order (spec order on a cycle)."""
        self.check_names(nodes, latents)
        arity_ok = {name: self.check_arity(n) for name, n in nodes.items()}
        for n in nodes.values():
            for i, t in enumerate(n.outputs):
                if t in latents and latents[t].table:
                    self.problem(
                        n.path + ("out",), f"'{t}' is a latent table (one code per example); no node may produce it"
                    )
                elif isinstance(self.producers.get(t), Latent):
                    # a node that draws a declared latent is its producer (e.g. reparameterize -> z)
                    self.producers[t] = Node(n.name)
                    self.paths[t] = n.path + ("out",)
                else:
                    self.produce(t, Node(n.name), n.path + ("out", i))
        succ: dict[str, set[str]] = {name: set() for name in nodes}
        for n in nodes.values():
            for t in n.reads:
                p = self.producers.get(t)
                if p is None:
                    init = [s for s, v in (n.state or {}).items() if v == t]  # a loop state's start
                    where = ("in", n.inputs.index(t)) if t in n.inputs else ("state", init[0]) if init else ("body",)
                    self.problem(n.path + where, f"undefined tensor '{t}'{did_you_mean(t, self.producers)}")
                elif isinstance(p, Node) and p.name in nodes:
                    succ[p.name].add(n.name)
        order, cycle = toposort(list(nodes), succ)
        if cycle:
            self.problem(
                nodes[cycle[0]].path,
                f"cycle {' -> '.join([*cycle, cycle[0]])}: only a `loop` node may feed a tensor back",
            )
            order = list(nodes)
        for name in order:
            if arity_ok[name] and all(t in self.producers for t in nodes[name].reads):
                self.infer(nodes[name], latents)
        return order

    def graph(self, nodes: Mapping[str, NodeSpec], latents: Mapping[str, LatentInfo]) -> Graph:
        """The graph as registered so far (``nodes`` in the order :meth:`add_nodes` returned)."""
        return Graph(nodes, latents, self.producers, self.infos)

    # -- shapes ------------------------------------------------------------------------------
    def infer(self, n: NodeSpec, latents: Mapping[str, LatentInfo]) -> None:
        """The infos of ``n``'s outputs from those of what it reads."""
        ins = tuple(self.infos.get(t, TensorInfo()) for t in n.reads)
        if n.body is not None:
            self._infer_loop(n, latents)
            return
        ctx = Context(n.name, n.cfg, n.reads, n.outputs, ins, latents)  # type: ignore[arg-type]
        try:
            outs = component(n)().infer(ctx) if not n.method else [TensorInfo(None)]
        except ShapeError as exc:
            self.problem(n.path, _prefixed(n.type, exc))
            outs = [TensorInfo() for _ in n.outputs]
        for t, info in zip(n.outputs, outs, strict=False):
            lat = latents.get(t)
            if lat is not None and info.shape is not None and info.shape != (lat.dim,):
                self.problem(
                    n.path,
                    f"node '{n.name}' makes latent '{t}' with shape {list(info.shape)}, but the latent is declared with dim {lat.dim}",
                )
            self.infos[t] = info

    def _infer_loop(self, n: NodeSpec, latents: Mapping[str, LatentInfo]) -> None:
        state = n.state or {}
        for s, init in state.items():
            if init in self.infos:
                self.infos[s] = self.infos[init]
        with self.scope({s: LoopState(n.name) for s in state}):
            for b in n.body.values():
                for t in b.outputs:
                    if t not in state:
                        self.produce(t, Node(b.name), b.path)
            order, cycle = body_order(n)
            if cycle:
                self.problem(
                    n.body[cycle[0]].path,
                    f"cycle {' -> '.join([*cycle, cycle[0]])}: inside a loop only a state may feed a tensor back",
                )
                order = list(n.body.values())
            for b in order:
                if self.check_arity(b):
                    for t in b.inputs:
                        if t not in self.producers and t not in self.infos:
                            self.problem(b.path + ("in",), f"undefined tensor '{t}'{did_you_mean(t, self.producers)}")
                    self.infer(b, latents)
        for s, t in zip(state, n.outputs, strict=False):
            self.infos[t] = self.infos.get(s, TensorInfo())
