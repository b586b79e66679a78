"""Entries of kind "optimize": the numpy Adam/projection loop of docs/bundle-format.md.

The reference below is the document's pseudo-code written out plainly; the runtime must agree
with it step for step, and converge to the least-squares answer of the linear test model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import _bundles
import numpy as np
import onnxruntime as ort
import pytest

from latentspec_runtime import Bundle, InputError
from latentspec_runtime._optimize import project


def reference_project(z: np.ndarray, block: dict[str, Any]) -> np.ndarray:
    if block["project"] is None:
        return z
    norm = np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    if block["project"] == "unit_l2":
        return z / norm
    return z * np.minimum(1, block["radius"] / norm)


def reference_loop(
    bundle_dir: Path, entry: str, data: dict[str, np.ndarray], steps: int, seed: int
) -> dict[str, np.ndarray]:
    """The loop of docs/bundle-format.md, with the entry's ONNX graph as loss and gradient."""
    block = _bundles.optimize_block()
    block.update(_load_block(bundle_dir, entry))
    session = ort.InferenceSession(str(bundle_dir / f"{entry}.onnx"), providers=["CPUExecutionProvider"])
    b1, b2 = block["betas"]
    lr, eps, dim = block["lr"], block["eps"], block["dim"]
    batch = next(iter(data.values())).shape[0]
    finals = []
    for j in range(block["starts"]):
        rng = np.random.default_rng([seed, j])
        init = block["init"]
        z = np.zeros((batch, dim), np.float32)
        if init["kind"] != "zeros" and init["value"] is not None:
            z = z + np.asarray(init["value"], np.float32)
        if init["kind"] == "normal" or j > 0:
            z = z + init["scale"] * rng.standard_normal([batch, dim]).astype(np.float32)
        z = reference_project(z, block)
        m = v = np.zeros_like(z)
        for t in range(1, steps + 1):
            loss, g = session.run(["loss", "grad_z"], {"z": z, **data})
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            z = z - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            z = reference_project(z, block)
        loss, x_hat = session.run(["loss", "x_hat"], {"z": z, **data})
        finals.append({"x_hat": x_hat, "z": z, "loss": loss})
    best = np.argmin(np.stack([f["loss"] for f in finals]), axis=0)  # (B,)
    return {k: np.stack([finals[s][k][i] for i, s in enumerate(best)]) for k in ("x_hat", "z", "loss")}


def _load_block(bundle_dir: Path, entry: str) -> dict[str, Any]:
    import json

    return json.loads((bundle_dir / "manifest.json").read_text())["entries"][entry]["optimize"]


def _data(batch: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    w = _bundles.Weights()
    z_true = np.random.default_rng(seed).standard_normal((batch, 4)).astype(np.float32)
    return z_true, (z_true @ w.w_dec + w.b_dec).astype(np.float32)


@pytest.mark.parametrize(
    "block",
    [
        {},
        {"project": "unit_l2", "init": {"kind": "mean", "value": [0.5, 0.5, 0.5, 0.5], "scale": 0.3}, "starts": 3},
        {"project": "l2_ball", "radius": 0.8, "init": {"kind": "normal", "value": None, "scale": 1.0}, "starts": 2},
        {"lr": 0.01, "betas": [0.5, 0.9], "eps": 1e-3},
    ],
    ids=["plain", "unit_l2-mean-3starts", "l2_ball-normal-2starts", "other-hyperparameters"],
)
def test_loop_matches_the_reference(tmp_path: Path, block: dict[str, Any]) -> None:
    root = _bundles.make_bundle(tmp_path / "b", **block)
    bundle = Bundle.load(root, device="cpu")
    _, x = _data()
    mask = (np.random.default_rng(1).random((3, 16)) > 0.3).astype(np.float32)
    for entry, data in (("invert", {"x": x}), ("inpaint", {"x": x, "mask": mask})):
        expected = reference_loop(root, entry, data, steps=7, seed=11)
        got = getattr(bundle, entry)(*data.values(), steps=7, seed=11)
        assert list(got) == ["x_hat", "z", "loss"]
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-7, err_msg=f"{entry} {key}")


def test_invert_converges_to_least_squares(tmp_path: Path) -> None:
    bundle = Bundle.load(_bundles.make_bundle(tmp_path / "b", lr=0.05), device="cpu")
    z_true, x = _data()
    out = bundle.invert(x, steps=500)
    np.testing.assert_allclose(out["z"], z_true, atol=1e-4)
    np.testing.assert_allclose(out["x_hat"], x, atol=1e-4)
    assert out["loss"].max() < 1e-8


def test_inpaint_converges_to_masked_least_squares(tmp_path: Path) -> None:
    w = _bundles.Weights()
    bundle = Bundle.load(_bundles.make_bundle(tmp_path / "b", lr=0.05), device="cpu")
    rng = np.random.default_rng(2)
    x = rng.random((2, 16)).astype(np.float32)  # not reachable exactly: a real least-squares fit
    mask = (rng.random((2, 16)) > 0.4).astype(np.float32)
    out = bundle.inpaint(x, mask, steps=1000)
    for i in range(2):
        known = mask[i] > 0
        z_ls = np.linalg.lstsq(w.w_dec.T[known].astype(np.float64), (x[i] - w.b_dec)[known], rcond=None)[0]
        np.testing.assert_allclose(out["z"][i], z_ls, atol=1e-3)
        loss_ls = _bundles.lstsq_loss(w, z_ls[None], x[i : i + 1], mask[i : i + 1])[0]
        assert out["loss"][i] == pytest.approx(loss_ls, rel=1e-3, abs=1e-6)


def test_multi_start_keeps_the_lowest_loss_per_example(tmp_path: Path) -> None:
    w = _bundles.Weights()
    init = {"kind": "normal", "value": None, "scale": 1.0}
    bundle = Bundle.load(_bundles.make_bundle(tmp_path / "b", starts=6, init=init), device="cpu")
    _, x = _data(batch=5)
    out = bundle.invert(x, steps=0, seed=3)
    starts = [np.random.default_rng([3, j]).standard_normal([5, 4]).astype(np.float32) for j in range(6)]
    losses = np.stack([_bundles.lstsq_loss(w, z, x) for z in starts])  # (starts, B)
    best = np.argmin(losses, axis=0)
    assert len(set(best.tolist())) > 1  # the examples really pick different starts
    np.testing.assert_array_equal(out["z"], np.stack([starts[s][i] for i, s in enumerate(best)]))
    np.testing.assert_allclose(out["loss"], losses.min(axis=0), rtol=1e-5)


def test_single_item_and_steps_argument(tmp_path: Path) -> None:
    bundle = Bundle.load(_bundles.make_bundle(tmp_path / "b", steps=3), device="cpu")
    _, x = _data(batch=2)
    single = bundle.invert(x[0])
    assert single["z"].shape == (4,) and single["loss"].shape == ()
    np.testing.assert_allclose(single["z"], bundle.invert(x)["z"][0], atol=1e-6)  # steps=3 default
    assert not np.allclose(bundle.invert(x, steps=4)["z"], bundle.invert(x)["z"])
    with pytest.raises(InputError, match="steps must be an integer >= 0"):
        bundle.invert(x, steps=-1)


def test_project() -> None:
    z = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(project(z, "unit_l2", 1.0), [[0.6, 0.8], [0.6, 0.8], [0, 0]], atol=1e-7)
    np.testing.assert_allclose(project(z, "l2_ball", 2.0), [[1.2, 1.6], [0.3, 0.4], [0, 0]], atol=1e-7)
    assert project(z, None, 1.0) is z
