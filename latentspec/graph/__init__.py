"""The one model of a spec's tensor graph (torch-free).

Who produces each tensor (:class:`Field`, :class:`Latent`, :class:`Node`, and within a scope
:class:`EntryInput` and :class:`LoopState`), one topological order with shapes inferred along
it (:class:`GraphBuilder`, :class:`Graph`), and :func:`plan`: the nodes and inputs that compute
some tensors from others. The validator builds the graph and plans each export entry with it;
the compiler builds its torch graphs from the same plans.

>>> from latentspec.graph import Field, Node
>>> Node("latent") == Field("latent")
False
"""

from latentspec.graph._graph import Graph, GraphBuilder, Problem, body_order, component, toposort
from latentspec.graph._node import NodeSpec
from latentspec.graph._plan import (
    FITTED_PRIORS,
    STEPS,
    Placeholder,
    Plan,
    PlanError,
    Unreachable,
    component_key,
    node_component,
    node_context,
    node_noise,
    plan,
)
from latentspec.graph._producers import EntryInput, Field, Latent, LoopState, Node, Producer

__all__ = [
    "FITTED_PRIORS",
    "STEPS",
    "EntryInput",
    "Field",
    "Graph",
    "GraphBuilder",
    "Latent",
    "LoopState",
    "Node",
    "NodeSpec",
    "Placeholder",
    "Plan",
    "PlanError",
    "Problem",
    "Producer",
    "Unreachable",
    "body_order",
    "component",
    "component_key",
    "node_component",
    "node_context",
    "node_noise",
    "plan",
    "toposort",
]
