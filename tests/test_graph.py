"""latentspec.graph: typed producers, one topological order, plans, located graph errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from latentspec.graph import (
    STEPS,
    EntryInput,
    Field,
    Latent,
    LoopState,
    Node,
    PlanError,
    body_order,
    plan,
    toposort,
)
from latentspec.spec import validate_text

VAE = """\
latentspec: 1
name: vae
data:
  dataset: mnist5k
  split: {train: 100, test: 50}
  fields:
    x: {from: images, scale: [0, 1], shape: [1, 28, 28]}
    y: {from: labels, classes: 10}
latents:
  z: {dim: 4}
nodes:
  dec:    {module: mlp, in: z, out: x_logits, hidden: [8], shape: [1, 28, 28]}
  x_mean: {op: sigmoid, in: x_logits}
  enc:    {module: mlp, in: x, out: h, hidden: [8]}
  post:   {module: gaussian_head, in: h, out: [z_mu, z_logvar], latent: z}
  draw:   {op: reparameterize, in: [z_mu, z_logvar], out: z}
objective:
  recon: {term: bernoulli_nll, in: [x_logits, x]}
  kl:    {term: gaussian_kl, in: [z_mu, z_logvar]}
export:
  encode: {in: [x], out: [z_mu, z_logvar]}
  sample: {in: [], out: [x_mean]}
"""


def valid(text: str):
    spec, diags = validate_text(text)
    assert spec is not None, "\n".join(map(str, diags))
    return spec


def errors(text: str) -> list[str]:
    spec, diags = validate_text(text)
    assert spec is None
    return [f"{d.line}:{d.col}: {d.path}: {d.message}" for d in diags if d.severity == "error"]


def test_producers_are_typed_so_no_node_name_is_a_marker():
    assert Node("latent") != Latent("latent") and Node("field") != Field("field")
    assert [p.describe() for p in (Field("x"), Latent("z"), Node("enc"))] == ["data field", "latent", "node 'enc'"]
    assert "entry 'inpaint'" in EntryInput("inpaint").describe() and "loop 'refine'" in LoopState("refine").describe()
    spec = valid(VAE)
    assert spec.producers["x"] == Field("x") and spec.producers["z"] == Node("draw")
    assert spec.producers["x_mean"] == Node("x_mean")


def test_nodes_are_in_topological_order_ties_in_spec_order():
    spec = valid(VAE)
    assert list(spec.nodes) == ["enc", "post", "draw", "dec", "x_mean"]
    assert list(spec.graph.nodes) == list(spec.nodes) and spec.graph.fields == ("x", "y")


def test_toposort_reports_the_cycle_as_a_path():
    succ = {"a": {"b"}, "b": {"c"}, "c": {"b"}, "d": set()}
    assert toposort(["d", "a", "b", "c"], succ) == ([], ["b", "c"])
    assert toposort(["b", "a"], {"a": {"b"}, "b": set()}) == (["a", "b"], [])


def test_a_cycle_is_reported_on_the_node_with_its_path():
    text = VAE.replace("in: z, out: x_logits", "in: x_mean, out: x_logits")
    assert "12:11: $.nodes.dec: cycle dec -> x_mean -> dec: only a `loop` node may feed a tensor back" in errors(text)


def test_an_entry_is_planned_by_the_validator_and_every_unreachable_tensor_is_an_error():
    text = VAE + "  predict: {in: [], out: [z_mu, x]}\n"
    assert errors(text) == [
        "23:17: $.export.predict.in: entry 'predict' needs data field 'x' but it is not among its inputs; add it to `in`"
    ]
    spec = valid(VAE)
    with pytest.raises(PlanError) as exc:
        plan(spec.graph, ["h", "y"], training=False)
    assert [m.tensor for m in exc.value.missing] == ["y", "x"]
    assert str(exc.value) == "needs data field 'y'; needs data field 'x'"


def test_plan_cuts_a_latent_that_its_inputs_do_not_reach_at_the_prior():
    spec = valid(VAE)
    p = plan(spec.graph, ["x_mean"], training=False)
    assert p.nodes == ("dec", "x_mean") and p.prior_cut == {"z"}
    assert [(ph.name, ph.kind, ph.latent) for ph in p.placeholders] == [("eps", "noise", "z")]
    t = plan(spec.graph, ["x_logits"], training=True)
    assert t.nodes == ("enc", "post", "draw", "dec") and not t.prior_cut
    assert [(ph.name, ph.kind) for ph in t.placeholders] == [("x", "field"), ("eps", "noise")]


def test_graph_inputs_never_take_a_tensors_name():
    spec = valid(VAE.replace("out: h,", "out: eps,").replace("in: h,", "in: eps,"))
    p = plan(spec.graph, ["x_logits"], training=True)
    assert [ph.name for ph in p.placeholders] == ["x", "eps_draw"]


LOOP = """\
latentspec: 1
name: loop
data:
  dataset: {hands: {size: 24}}
  split: {train: 16, test: 8}
  fields: {x: {from: image}, p: {from: joints_flat}}
nodes:
  predictor: {module: conv_encoder, in: x, out: p0, channels: [4], dim: 42}
  synth:     {module: conv_decoder, in: p, out: x_syn, shape: [1, 64, 64], channels: [4]}
  updater:   {module: conv_encoder, in: [x, x_syn], out: dp, channels: [4], dim: 42}
  refine:
    op: loop
    steps: 2
    state: {q: p0}
    body:
      q:    {op: add, in: [q, d_q]}
      d_q:  {use: updater, in: [x, x_q]}
      x_q:  {use: synth, in: q}
    out: p_refined
objective:
  pose:  {term: mse, in: [p0, p]}
  synth: {term: mse, in: [x_syn, x]}
  upd:   {term: mse, in: [dp, p]}
export:
  refine: {in: [x], out: [p_refined]}
"""


def test_a_loop_body_runs_in_dependency_order_whatever_its_spec_order():
    spec = valid(LOOP)
    order, cycle = body_order(spec.nodes["refine"])
    assert [b.name for b in order] == ["x_q", "d_q", "q"] and cycle == []
    assert spec.infos["p_refined"].shape == (42,)
    p = plan(spec.graph, ["p_refined"], ["x"], training=False, loop_steps_input=True)
    assert [(ph.name, ph.tensor, ph.kind) for ph in p.placeholders] == [("x", "x", "input"), ("steps", STEPS, "steps")]


def test_a_tensor_named_steps_keeps_its_name_and_the_trip_count_takes_another():
    spec = valid(LOOP.replace("p0", "steps"))
    p = plan(spec.graph, ["p_refined"], ["x", "steps"], training=False, loop_steps_input=True)
    assert [(ph.name, ph.tensor, ph.kind) for ph in p.placeholders] == [
        ("x", "x", "input"),
        ("steps", "steps", "input"),
        ("steps_1", STEPS, "steps"),
    ]


def test_an_undefined_loop_start_is_located_at_its_state():
    text = LOOP.replace("state: {q: p0}", "state: {q: p00}")
    assert errors(text) == ["14:16: $.nodes.refine.state.q: undefined tensor 'p00' (did you mean 'p0'?)"]


def test_a_cycle_inside_a_loop_body_is_located():
    text = LOOP.replace("x_q:  {use: synth, in: q}", "x_q:  {use: synth, in: d_q}")
    assert errors(text) == [
        "17:13: $.nodes.refine.body.d_q: cycle d_q -> x_q -> d_q: inside a loop only a state may feed a tensor back"
    ]


def test_a_duplicate_of_a_scalar_out_is_located_at_the_out_key():
    text = VAE.replace("out: h, hidden", "out: x_logits, hidden")
    got = errors(text)
    assert got[0] == "14:37: $.nodes.enc.out: tensor 'x_logits' is produced twice: here and by node 'dec' (line 12)"


def test_the_graph_package_imports_no_torch():
    code = (
        "import sys\n"
        "from latentspec.graph import plan\n"
        "from latentspec.spec import validate_text\n"
        f"spec, _ = validate_text({VAE!r})\n"
        "assert plan(spec.graph, ['x_mean'], training=False).nodes == ('dec', 'x_mean')\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
