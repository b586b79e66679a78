"""Node and tensor names never pass for the graph's own markers (issue 10's acceptance test).

Every zoo spec has its nodes renamed to marker-like names (``latent``, ``field``, ``x``,
``self``), Python keywords and builtins, and names the compiler itself uses. Each renamed spec
either compiles to the same model (the same fx graph up to the names, the same modules and
parameter shapes) or is refused with an error on the renamed node's line. The VAE renamed so
trains to the same first-epoch losses, and its exported ONNX graphs carry the new names.
"""

from __future__ import annotations

import builtins
import copy
import glob
import json
import keyword
import os

import pytest
import yaml
from torch import fx

from latentspec.compiler import compile_spec
from latentspec.spec import validate_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO = sorted(
    glob.glob(os.path.join(ROOT, "specs", "*.yaml")) + glob.glob(os.path.join(ROOT, "tests", "gallery", "*.yaml"))
)
VAE = os.path.join(ROOT, "specs", "vae_mnist.yaml")
# valid names that a producer marker, Python or the compiler could mistake for its own
NAMES = [
    "latent",
    "field",
    "x",
    "self",
    "def",
    "class",
    "lambda",
    "None",
    "import",
    "print",
    "input",
    "sum",
    "len",
    "type",
    "training",
    "forward",
    "graph",
    "code",
    "eps",
    "steps",
]
NOT_NAMES = ["loop-state", "entry-input"]  # the old markers that are no valid names


def load(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def rename_node(raw: dict, old: str, new: str) -> dict:
    """``raw`` with node ``old`` called ``new``: its key, `use:` of it, `trainable`, optimizer
    `groups`. A node without `out` keeps producing the tensor ``old`` (only the node is renamed)."""
    raw = copy.deepcopy(raw)

    def nodes(ns: dict) -> dict:
        out = {}
        for name, n in ns.items():
            if name == old and "out" not in n:
                n["out"] = old
            if n.get("use") == old:
                n["use"] = new
            if "body" in n:
                n["body"] = nodes(n["body"])
            out[new if name == old else name] = n
        return out

    def groups(opt) -> None:
        if isinstance(opt, dict) and isinstance(opt.get("groups"), dict):
            opt["groups"] = {new if k == old else k: v for k, v in opt["groups"].items()}

    raw["nodes"] = nodes(raw.get("nodes") or {})
    train = raw.get("train") or {}
    groups(train.get("optimizer"))
    for stage in train.get("stages") or []:
        if "trainable" in stage:
            stage["trainable"] = [new if t == old else t for t in stage["trainable"]]
        groups(stage.get("optimizer"))
    return raw


def rename_nodes(raw: dict, mapping: dict[str, str]) -> dict:
    for old in mapping:  # through unique temporaries, so that names may swap
        raw = rename_node(raw, old, f"tmp_{old}_")
    for old, new in mapping.items():
        raw = rename_node(raw, f"tmp_{old}_", new)
    return raw


def rename_tensor(raw: dict, old: str, new: str) -> dict:
    """``raw`` with tensor ``old`` called ``new`` wherever a node, term or entry names it."""
    raw = copy.deepcopy(raw)

    def names(v):
        return (new if v == old else v) if isinstance(v, str) else [new if t == old else t for t in v]

    def nodes(ns: dict) -> None:
        for name, n in list(ns.items()):
            if "out" not in n and name == old:
                n["out"] = new
            for key in ("in", "out"):
                if key in n:
                    n[key] = names(n[key])
            if "state" in n:
                n["state"] = {new if s == old else s: new if t == old else t for s, t in n["state"].items()}
            nodes(n.get("body") or {})

    nodes(raw.get("nodes") or {})
    for term in (raw.get("objective") or {}).values():
        term["in"] = names(term["in"])
    for entry in (raw.get("export") or {}).values():
        for key in ("in", "out"):
            if key in entry:
                entry[key] = names(entry[key])
        for term in entry.get("terms") or []:
            if isinstance(term, dict):
                term["in"] = names(term["in"])
    return raw


def validate(raw: dict, path: str):
    text = yaml.safe_dump(raw, sort_keys=False)
    spec, diags = validate_text(text, path)
    return spec, [d for d in diags if d.severity == "error"], text


def canon(gm: fx.GraphModule, renamed: dict[str, str] | None = None) -> list[tuple]:
    """The graph with its names taken out: nodes by position, modules by first use (with their
    type and parameter shapes), placeholders by position; output keys by ``renamed`` (new -> old)."""
    ids: dict[fx.Node, int] = {}
    mods: dict[str, str] = {}
    out = []
    for n in gm.graph.nodes:
        ids[n] = len(ids)
        target = n.target
        if n.op in ("call_module", "get_attr"):
            mod = gm.get_submodule(n.target)
            shapes = tuple(tuple(p.shape) for p in mod.parameters())
            target = (mods.setdefault(n.target, f"m{len(mods)}"), type(mod).__name__, shapes)
        elif n.op == "placeholder":
            target = "placeholder"
        args = fx.node.map_arg((n.args, n.kwargs), lambda a: f"%{ids[a]}")
        if n.op == "output" and isinstance(args[0][0], dict):
            args = (({(renamed or {}).get(k, k): v for k, v in args[0][0].items()},), args[1])
        out.append((n.op, repr(target), repr(args)))
    return out


def graphs(spec) -> dict[str, list[tuple]]:
    model = compile_spec(spec)
    out = {"<training>": canon(model.training_graph[0])}
    out.update({name: canon(model.entry(name)[0]) for name in spec.export})
    return out


@pytest.mark.parametrize("path", ZOO, ids=os.path.basename)
def test_renamed_nodes_compile_to_the_same_graphs(path):
    raw = load(path)
    spec, errors, _ = validate(raw, path)
    assert spec is not None, errors
    want = graphs(spec)
    called = {n.target for n in compile_spec(spec).training_graph[0].graph.nodes if n.op == "call_module"}
    nodes = list(raw.get("nodes") or {})
    assert len(nodes) <= len(NAMES)
    for r in range(len(NAMES)):  # every node gets every name, all nodes renamed at once
        mapping = {old: NAMES[(i + r) % len(NAMES)] for i, old in enumerate(nodes)}
        renamed, errors, _ = validate(rename_nodes(raw, mapping), path)
        assert renamed is not None, (mapping, [str(e) for e in errors])
        assert graphs(renamed) == want, mapping
        gm, _ = compile_spec(renamed).training_graph
        targets = {n.target for n in gm.graph.nodes if n.op == "call_module"}
        for old, new in mapping.items():  # the fx code calls each node by its new name
            if old in called:
                assert new in targets or f"{new}_" in targets, (new, sorted(targets))


@pytest.mark.parametrize("path", ZOO, ids=os.path.basename)
@pytest.mark.parametrize("name", NOT_NAMES)
def test_marker_names_that_are_no_names_are_refused_on_their_line(path, name):
    raw = load(path)
    old = next(iter(raw["nodes"]))
    spec, errors, text = validate(rename_node(raw, old, name), path)
    assert spec is None
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.strip().startswith(f"{name}:"))
    assert any(e.line == line and name in e.message for e in errors), [str(e) for e in errors]


def test_vae_node_named_latent_still_feeds_the_posterior_sample():
    """The reported bug: `draw` renamed `latent` made the decoder read prior noise."""
    spec, errors, _ = validate(rename_node(load(VAE), "draw", "latent"), VAE)
    assert spec is not None, errors
    code = compile_spec(spec).training_graph[0].code
    assert "z = self.latent(z_mu, z_logvar, eps)" in code
    assert "x_logits = self.dec(z)" in code


def test_a_node_named_like_a_latent_table_is_refused():
    path = os.path.join(ROOT, "tests", "gallery", "glo.yaml")
    spec, errors, text = validate(rename_node(load(path), "gen", "z"), path)
    assert spec is None
    lines = text.splitlines()
    line = next(i for i, s in enumerate(lines, 1) if s.startswith("  z:") and i > lines.index("nodes:"))
    assert [(e.line, e.path) for e in errors] == [(line, "$.nodes.z")]
    assert "latent table 'z'" in errors[0].message


def test_node_names_are_unique_across_loop_bodies():
    path = os.path.join(ROOT, "tests", "gallery", "feedback_hands.yaml")
    spec, errors, text = validate(rename_node(load(path), "refine", "q"), path)
    assert spec is None
    lines = text.splitlines()
    outer = next(i for i, s in enumerate(lines, 1) if s.startswith("  q:"))
    inner = next(i for i, s in enumerate(lines, 1) if s.startswith("      q:") and i > lines.index("    body:"))
    assert [(e.line, e.path) for e in errors] == [(inner, "$.nodes.q.body.q")]
    assert errors[0].message.endswith(f"'q' is taken by another node (line {outer})")


def test_renamed_tensors_keep_their_names_in_fx_code():
    """Tensor names are the fx graph's value names; fx adds a suffix to keywords and builtins,
    the same one on every build."""
    raw = load(VAE)
    mapping = {"h": "self", "z_mu": "latent", "z_logvar": "lambda", "x_logits": "sum", "x_mean": "field"}
    for old, new in mapping.items():
        raw = rename_tensor(raw, old, new)
    spec, errors, _ = validate(raw, VAE)
    assert spec is not None, errors
    gm, _ = compile_spec(spec).training_graph
    names = [n.name for n in gm.graph.nodes]
    for new in ("self", "latent", "lambda", "sum"):  # `self` is the forward's own parameter
        mangled = keyword.iskeyword(new) or hasattr(builtins, new) or new == "self"
        assert (f"{new}_1" if mangled else new) in names, (new, names)
    assert gm.code == compile_spec(spec).training_graph[0].code  # deterministic
    old = {new: old for old, new in mapping.items()}
    assert canon(gm, old) == canon(compile_spec(validate(load(VAE), VAE)[0]).training_graph[0])


def epoch_losses(run: str) -> dict:
    with open(os.path.join(run, "metrics.jsonl")) as f:
        (row,) = [r for r in map(json.loads, f) if r["kind"] == "epoch"]
    return {"train": row["train"], "test": row.get("test")}


@pytest.mark.slow
def test_vae_with_marker_node_names_trains_the_same(tmp_path):
    from latentspec.spec import load_spec
    from latentspec.train.trainer import train

    small = ["data.split.train=240", "data.split.test=60", "data.batch=32", "train.epochs=1", "train.samples_every=0"]
    mapping = {"enc": "field", "post": "self", "draw": "latent", "dec": "def", "x_mean": "x"}
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(yaml.safe_dump(rename_nodes(load(VAE), mapping), sort_keys=False))
    losses = []
    for i, path in enumerate((VAE, str(renamed))):
        run = str(tmp_path / f"run{i}")
        train(load_spec(path, small), run, quiet=True, device="cpu")
        losses.append(epoch_losses(run))
    for split in ("train", "test"):
        for term, value in losses[0][split].items():
            assert losses[1][split][term] == pytest.approx(value, abs=1e-6), (split, term)


@pytest.mark.slow
def test_renamed_vae_exports_onnx_with_the_spec_names(tmp_path):
    onnx = pytest.importorskip("onnx")
    from latentspec.export import export_model

    raw = rename_nodes(load(VAE), {"dec": "def", "draw": "latent", "x_mean": "print"})
    for old, new in {"z_mu": "lambda", "x_mean": "input", "z_logvar": "field"}.items():
        raw = rename_tensor(raw, old, new)
    raw["data"]["split"] = {"train": 100, "test": 50}
    spec, errors, _ = validate(raw, VAE)
    assert spec is not None, errors
    out = str(tmp_path / "bundle")
    manifest = export_model(spec, compile_spec(spec), out, formats="onnx", verify=True)
    assert sorted(manifest["entries"]) == ["decode", "encode", "sample"]
    for name, e in spec.export.items():
        g = onnx.load(os.path.join(out, f"{name}.onnx")).graph
        assert [o.name for o in g.output] == list(e.outputs), name
        assert [i.name for i in g.input][: len(e.inputs)] == list(e.inputs), name
    assert spec.export["encode"].outputs == ("lambda", "field")
