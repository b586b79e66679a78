"""``optimize:`` entries (GLO invert / inpaint): the step graph, the manifest block, and the
runtime's loop against the PyTorch reference loop."""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from latentspec.errors import ExportError
from latentspec.export._optimize import OptimizeGraph, _PerExample, reference_optimize
from latentspec.nn.modules import project_rows
from latentspec.nn.terms import LaplacianL1, MaskedRecon


def _io(path: str) -> tuple[list[str], list[str]]:
    m = onnx.load(path)
    return [i.name for i in m.graph.input], [o.name for o in m.graph.output]


def test_step_graphs_take_the_variable_then_the_data(glo_bundle):
    root, manifest = glo_bundle
    assert _io(os.path.join(root, "invert.onnx")) == (["z", "x"], ["loss", "grad_z", "x_hat"])
    assert _io(os.path.join(root, "inpaint.onnx")) == (["z", "x", "mask"], ["loss", "grad_z", "x_hat"])
    inpaint = manifest["entries"]["inpaint"]
    assert inpaint["kind"] == "optimize"
    assert [(t["name"], t["meaning"], t["range"]) for t in inpaint["inputs"]] == [
        ("x", "image", [0.0, 1.0]),
        ("mask", "mask", [0.0, 1.0]),
    ]
    assert [t["name"] for t in inpaint["outputs"]] == ["x_hat"]
    invert = manifest["entries"]["invert"]
    assert [(t["name"], t["meaning"]) for t in invert["outputs"]] == [("z", "latent"), ("x_hat", "image")]
    assert manifest["entries"]["decode"]["kind"] == "graph"


def test_optimize_block(glo, glo_bundle):
    _, model = glo
    block = glo_bundle[1]["entries"]["inpaint"]["optimize"]
    assert {k: block[k] for k in ("variable", "loss", "gradient", "dim", "graph_outputs")} == {
        "variable": "z",
        "loss": "loss",
        "gradient": "grad_z",
        "dim": 8,
        "graph_outputs": ["x_hat"],
    }
    assert (block["steps"], block["lr"], block["starts"], block["optimizer"]) == (40, 0.05, 2, "adam")
    assert (block["betas"], block["eps"], block["project"]) == ([0.9, 0.999], 1e-8, "unit_l2")
    init = block["init"]
    assert init["kind"] == "mean" and init["scale"] == 0.1
    mean = model.module_of("z").weight.detach().mean(0)
    np.testing.assert_allclose(init["value"], (mean / mean.norm()).numpy(), atol=1e-6)


def test_loss_and_gradient_match_autograd(glo, glo_bundle):
    _, model = glo
    g = torch.Generator().manual_seed(5)
    z = project_rows(torch.randn(6, 8, generator=g), "unit_l2", 1.0)
    x, mask = torch.rand(6, 1, 28, 28, generator=g), (torch.rand(6, 1, 28, 28, generator=g) < 0.5).float()
    session = ort.InferenceSession(os.path.join(glo_bundle[0], "inpaint.onnx"), providers=["CPUExecutionProvider"])
    loss, grad, x_hat = session.run(None, {"z": z.numpy(), "x": x.numpy(), "mask": mask.numpy()})
    zz = z.clone().requires_grad_(True)
    with torch.enable_grad():
        out = torch.sigmoid(model.module_of("gen")(zz))
        per_example = (((out - x) * mask) ** 2).flatten(1).sum(1)  # ‖(g(z) − x) ⊙ m‖² per example
        (expected_grad,) = torch.autograd.grad(per_example.sum(), zz)
    np.testing.assert_allclose(loss, per_example.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, expected_grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(x_hat, out.detach().numpy(), atol=1e-6)


def test_runtime_inpaints_like_the_reference_loop(glo, glo_bundle):
    import latentspec_runtime

    spec, model = glo
    root, manifest = glo_bundle
    bundle = latentspec_runtime.Bundle.load(root, device="cpu")
    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 1, 28, 28, generator=g)
    mask = (torch.rand(5, 1, 28, 28, generator=g) < 0.5).float()
    got = bundle.inpaint(x.numpy(), mask.numpy(), steps=15, seed=7)
    og = OptimizeGraph(model, spec.export["inpaint"])
    ref = reference_optimize(og, manifest["entries"]["inpaint"]["optimize"], [x, mask], steps=15, seed=7)
    assert set(got) == {"x_hat", "loss"}
    np.testing.assert_allclose(got["x_hat"], ref["x_hat"].numpy(), atol=1e-3)
    np.testing.assert_allclose(got["loss"], ref["loss"].numpy(), rtol=1e-3, atol=1e-3)
    # and the loop does what it says: the masked error goes down from the starting point
    start = reference_optimize(og, manifest["entries"]["inpaint"]["optimize"], [x, mask], steps=0, seed=7)
    assert float(ref["loss"].mean()) < float(start["loss"].mean())


def test_runtime_inverts_like_the_reference_loop(glo, glo_bundle):
    import latentspec_runtime

    spec, model = glo
    root, manifest = glo_bundle
    bundle = latentspec_runtime.Bundle.load(root, device="cpu")
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    got = bundle.invert(x.numpy(), steps=10, seed=0)
    og = OptimizeGraph(model, spec.export["invert"])
    ref = reference_optimize(og, manifest["entries"]["invert"]["optimize"], [x], steps=10, seed=0)
    for k in ("z", "x_hat"):
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(got["z"], axis=1), 1.0, atol=1e-5)  # unit_l2


def test_verification_covered_the_optimize_entries(glo_bundle):
    verified = glo_bundle[1]["verified"]
    for name in ("invert", "inpaint"):
        assert verified[name]["batches"] == [1, 64] and verified[name]["reference_steps"] == 20
        assert verified[name]["runtime_max_abs_diff"] <= 1e-3


@pytest.mark.parametrize("term", [LaplacianL1([1.0, 2.0, 4.0]), MaskedRecon()])
def test_terms_give_their_loss_per_example(term):
    g = torch.Generator().manual_seed(0)
    args = [torch.rand(4, 1, 16, 16, generator=g) for _ in range(2 if isinstance(term, LaplacianL1) else 3)]
    with _PerExample():
        per_example = term(*args)
    assert per_example.shape == (4,)
    slices = torch.stack([term(*(a[i : i + 1] for a in args)) for i in range(4)])
    torch.testing.assert_close(per_example, slices)
    torch.testing.assert_close(per_example.mean(), term(*args))


def test_a_term_that_mixes_examples_is_refused(tmp_path):
    from _export_specs import GLO_MIXING_SPEC

    from latentspec.compiler import compile_spec
    from latentspec.export import export_model
    from latentspec.spec import load_spec

    spec = load_spec(GLO_MIXING_SPEC, text=True)
    out = tmp_path / "b"
    with pytest.raises(ExportError, match="per-example"):
        export_model(spec, compile_spec(spec), str(out), entries=["invert"])
    assert not out.exists()
