"""The compiler: spec names in the fx graph, weight sharing, entry slicing, every gallery spec."""

from __future__ import annotations

import glob
import os

import pytest
import torch
from torch import nn

from latentspec.cli import main
from latentspec.compiler import CompileError, compile_spec
from latentspec.spec import load_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAE = os.path.join(ROOT, "specs", "vae_mnist.yaml")
GALLERY = sorted(glob.glob(os.path.join(ROOT, "tests", "gallery", "*.yaml")))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.yaml")))


class HandWrittenVAE(nn.Module):
    """pytorch/examples vae/main.py, 784-400-20."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def vae():
    return compile_spec(load_spec(VAE))


def test_vae_parameter_count_matches_hand_written(vae):
    assert n_params(vae) == n_params(HandWrittenVAE()) == 652_824


def test_vae_graph_reads_with_spec_names(vae):
    gm, plan = vae.training_graph
    code = gm.code
    for name in ("x", "h", "z_mu", "z_logvar", "z", "x_logits"):
        assert f"{name} = " in code or f"def forward(self, {name}" in code, name
    assert "self.enc(x)" in code and "self.dec(z)" in code
    assert [p.name for p in plan.placeholders] == ["x", "eps"]


def test_vae_training_forward_shapes(vae):
    gm, _ = vae.training_graph
    out = gm(torch.rand(5, 1, 28, 28), torch.randn(5, 20))
    assert out["x_logits"].shape == (5, 1, 28, 28)
    assert out["z_mu"].shape == out["z_logvar"].shape == (5, 20)


def test_decode_slice_has_no_encoder_parameters(vae):
    gm, plan = vae.entry("decode")
    names = {n for n, _ in gm.named_parameters()}
    assert names and all(n.startswith("dec.") for n in names)
    assert [p.name for p in plan.placeholders] == ["z"]


def test_sample_takes_eps(vae):
    gm, plan = vae.entry("sample")
    (ph,) = plan.placeholders
    assert (ph.name, ph.kind, ph.distribution, ph.latent) == ("eps", "noise", "normal", "z")
    x = gm(torch.randn(3, 20)).detach()
    assert x.shape == (3, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1


def test_encode_slice_is_deterministic(vae):
    gm, plan = vae.entry("encode")
    assert [p.name for p in plan.placeholders] == ["x"]
    x = torch.rand(2, 1, 28, 28)
    a, b = gm(x), gm(x)
    assert torch.equal(a[0], b[0])


def test_use_shares_weights():
    spec = load_spec(os.path.join(ROOT, "tests", "gallery", "paired_faces.yaml"))
    m = compile_spec(spec)
    assert m.module_of("enc_b") is m.module_of("enc") and m.module_of("swap") is m.module_of("dec_b")
    # one set of encoder weights in the state dict
    assert not any(k.startswith(("enc_b.", "enc_x.")) for k in m.state_dict())
    gm, _ = m.entry("swap")
    assert "self.enc(x_a)" in gm.code and "self.dec_b(h_x)" in gm.code


def test_training_only_ops_are_identity_in_entries():
    spec = load_spec(
        os.path.join(ROOT, "tests", "gallery", "dcign.yaml"),
        ["data.dataset.shapes.size=200", "data.split.train=100", "data.split.test=60"],
    )
    m = compile_spec(spec)
    gm, plan = m.entry("decode")
    assert [p.name for p in plan.placeholders] == ["z"]
    assert "clamp" not in gm.code


def test_loop_entry_takes_steps():
    spec = load_spec(os.path.join(ROOT, "tests", "gallery", "feedback_hands.yaml"))
    m = compile_spec(spec)
    gm, plan = m.entry("refine")
    assert [(p.name, p.kind) for p in plan.placeholders] == [("x", "input"), ("steps", "steps")]
    x = torch.rand(2, 1, 64, 64)
    p0 = m.entry("predict")[0](x)
    with torch.no_grad():
        assert torch.allclose(gm(x, torch.tensor(0)), p0)
        # two steps by hand
        q = p0
        for _ in range(2):
            q = q + m.module_of("updater")(x, m.module_of("synth")(q))
        assert torch.allclose(gm(x, torch.tensor(2)), q, atol=1e-6)


@pytest.mark.parametrize("path", GALLERY + SPECS, ids=os.path.basename)
def test_every_spec_compiles_and_slices(path):
    spec = load_spec(path)
    m = compile_spec(spec)
    m.training_graph  # noqa: B018 - builds the graph
    for name in spec.export:
        gm, plan = m.entry(name)
        assert isinstance(gm, torch.fx.GraphModule)
        assert {p.name for p in plan.placeholders if p.kind == "input"} == set(spec.export[name].inputs)


def test_python_modules_need_permission(tmp_path):
    with open(VAE) as f:
        text = f.read()
    text = text.replace(
        "{module: mlp, in: x, out: h, hidden: [400], activation: relu}",
        "{module: python, in: x, out: h, class: 'torch.nn:Flatten', shape: [784]}",
    )
    p = tmp_path / "py.yaml"
    p.write_text(text)
    spec = load_spec(str(p))
    with pytest.raises(CompileError, match="--allow-python"):
        compile_spec(spec)
    m = compile_spec(spec, allow_python=True)
    assert m.training_graph[0](torch.rand(2, 1, 28, 28), torch.randn(2, 20))["x_logits"].shape == (2, 1, 28, 28)


def test_compile_cli(capsys, tmp_path):
    assert main(["compile", VAE]) == 0
    out = capsys.readouterr().out
    assert "652,824 parameters" in out and "z_mu [B, 20]" in out
    assert main(["compile", VAE, "--emit", "python", "--entry", "decode"]) == 0
    assert "x_mean = self.x_mean(x_logits)" in capsys.readouterr().out
    assert main(["compile", VAE, "--emit", "graph", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TD")
    assert main(["compile", VAE, "--emit", "graph", "-o", str(tmp_path / "g.dot")]) == 0
    assert (tmp_path / "g.dot").read_text().startswith('digraph "vae_mnist"')


def test_compile_cli_svg_without_graphviz(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert main(["compile", VAE, "--emit", "graph", "-o", str(tmp_path / "g.svg")]) == 1
    assert "Graphviz" in capsys.readouterr().err


_AUDIT_COMPILE = """
import json, os, sys
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        opened.append(os.fsdecode(args[0]))
sys.addaudithook(hook)
from latentspec.cli import main
rc = main(["compile", sys.argv[1]])
during_compile = list(opened)
# the control: sizing the latent table reads the data, and the hook sees it
from latentspec.data.pipeline import table_sizes
from latentspec.spec import load_spec
opened.clear()
sizes = table_sizes(load_spec(sys.argv[1]))
print("AUDIT " + json.dumps({"rc": rc, "compile": during_compile, "control": opened, "sizes": sizes}))
"""


def test_compiling_a_latent_table_spec_opens_no_data_file():
    """`latentspec compile` on GLO (one code per training row) reads no dataset: the table's size
    comes from the data only when training, or from the checkpoint when loading a run."""
    import json
    import subprocess
    import sys

    glo = os.path.join(ROOT, "tests", "gallery", "glo.yaml")
    res = subprocess.run([sys.executable, "-c", _AUDIT_COMPILE, glo], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    audit = json.loads(next(line for line in res.stdout.splitlines() if line.startswith("AUDIT "))[6:])
    assert audit["rc"] == 0
    assert "32 per training row" in res.stdout  # the summary says what the table's size depends on

    def data_files(paths):
        return [p for p in paths if p.endswith((".npz", ".npy", ".gz", "-ubyte", ".png", ".jpg"))]

    assert data_files(audit["compile"]) == []
    assert any(p.endswith("mnist5k.npz") for p in data_files(audit["control"])), audit["control"]
    assert audit["sizes"] == {"z": 4000}
