"""op: loop — declared here, compiled by the compiler (never built as a module)."""

import pytest

from latentspec.components._kinds import OPS
from latentspec.components._node import TensorInfo

LOOP = OPS["loop"]


def test_descriptor_only(make):
    assert [p.name for p in LOOP.params] == ["body", "steps", "state"]
    assert LOOP.param("body").required and LOOP.param("state").required
    assert LOOP.param("steps").default == 2
    assert LOOP.n_inputs == (0, None) and LOOP.has_params is False
    cfg = {"body": {"q": {"op": "add", "in": ["q", "d_q"]}}, "state": {"q": "p0"}}
    comp, ctx = make(LOOP, cfg, {"p0": (42,)}, ("p_refined",))
    assert comp.infer(ctx) == [TensorInfo()]
    with pytest.raises(TypeError, match="loop nodes are compiled by the compiler"):
        comp.build(ctx)
