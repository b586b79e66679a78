"""Tiny bundles for the runtime tests, built with ``onnx.helper`` (no torch, no latentspec).

The "model" is linear so that every entry has a numpy reference: codes z (D=4) decode to 4x4
one-channel images x = sigmoid(z W + b); the optimize entries solve (masked) linear least
squares, min_z sum((z A + c - x)^2 * mask), whose answer ``numpy.linalg.lstsq`` gives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
IR_VERSION = 9
D = 4  # latent size
N = 16  # pixels: images are (1, 4, 4)
IMAGE = [1, 4, 4]
_FLOAT, _INT64, _BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


@dataclass(frozen=True)
class Weights:
    """The parameters of the tiny model, drawn from a fixed seed."""

    w_dec: np.ndarray = field(default_factory=lambda: _rng(0).normal(size=(D, N)).astype(np.float32))
    b_dec: np.ndarray = field(default_factory=lambda: _rng(1).normal(size=N).astype(np.float32))
    w_enc: np.ndarray = field(default_factory=lambda: _rng(2).normal(size=(N, D)).astype(np.float32))
    b_enc: np.ndarray = field(default_factory=lambda: _rng(3).normal(size=D).astype(np.float32))
    w_lv: np.ndarray = field(default_factory=lambda: _rng(4).normal(size=(N, D)).astype(np.float32))
    embed: np.ndarray = field(default_factory=lambda: _rng(5).normal(size=(3, D)).astype(np.float32))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- numpy references --------------------------------------------------------------------------


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def decode_ref(w: Weights, z: np.ndarray) -> np.ndarray:
    """(B, D) -> (B, 1, 4, 4)."""
    return sigmoid(z @ w.w_dec + w.b_dec).reshape(-1, *IMAGE)


def code_ref(w: Weights, x: np.ndarray) -> np.ndarray:
    """(B, 1, 4, 4) -> (B, D): the encoder's mean."""
    return x.reshape(-1, N) @ w.w_enc + w.b_enc


def refine_ref(x: np.ndarray, iterations: int) -> np.ndarray:
    """p0 = x / 2, then p <- p + (x - p) / 10, ``iterations`` times."""
    p = 0.5 * x
    for _ in range(iterations):
        p = p + 0.1 * (x - p)
    return p


def lstsq_loss(w: Weights, z: np.ndarray, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    r = z @ w.w_dec + w.b_dec - x
    return np.sum(r * r * (1.0 if mask is None else mask), axis=1)


def lstsq_grad(w: Weights, z: np.ndarray, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    r = z @ w.w_dec + w.b_dec - x
    return 2.0 * (r * (1.0 if mask is None else mask)) @ w.w_dec.T


# -- graphs ------------------------------------------------------------------------------------


def _vi(name: str, elem: int, shape: list[Any] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    init: dict[str, np.ndarray],
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in init.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def _decoder_nodes(z: str, out: str) -> list[onnx.NodeProto]:
    return [
        helper.make_node("MatMul", [z, "w_dec"], ["h"]),
        helper.make_node("Add", ["h", "b_dec"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["s"]),
        helper.make_node("Reshape", ["s", "image_shape"], [out]),
    ]


def _decoder_init(w: Weights) -> dict[str, np.ndarray]:
    return {"w_dec": w.w_dec, "b_dec": w.b_dec, "image_shape": np.array([-1, *IMAGE], np.int64)}


def decode_model(w: Weights, z: str = "z") -> onnx.ModelProto:
    """z (batch, D) -> x_mean (batch, 1, 4, 4) = sigmoid(z W + b)."""
    return _model(
        _decoder_nodes(z, "x_mean"),
        [_vi(z, _FLOAT, ["batch", D])],
        [_vi("x_mean", _FLOAT, ["batch", *IMAGE])],
        _decoder_init(w),
    )


def encode_model(w: Weights) -> onnx.ModelProto:
    """x (batch, 1, 4, 4) -> z_mu, z_logvar (batch, D): two linear heads."""
    nodes = [
        helper.make_node("Reshape", ["x", "flat"], ["xf"]),
        helper.make_node("MatMul", ["xf", "w_enc"], ["m"]),
        helper.make_node("Add", ["m", "b_enc"], ["z_mu"]),
        helper.make_node("MatMul", ["xf", "w_lv"], ["z_logvar"]),
    ]
    init = {"flat": np.array([-1, N], np.int64), "w_enc": w.w_enc, "b_enc": w.b_enc, "w_lv": w.w_lv}
    return _model(
        nodes,
        [_vi("x", _FLOAT, ["batch", *IMAGE])],
        [_vi("z_mu", _FLOAT, ["batch", D]), _vi("z_logvar", _FLOAT, ["batch", D])],
        init,
    )


def generate_model(w: Weights) -> onnx.ModelProto:
    """y (batch,) int64 class, eps (batch, D) -> x (batch, 1, 4, 4) = decode(embed[y] + eps)."""
    nodes = [
        helper.make_node("Gather", ["embed", "y"], ["e"], axis=0),
        helper.make_node("Add", ["e", "eps"], ["zz"]),
        *_decoder_nodes("zz", "x"),
    ]
    return _model(
        nodes,
        [_vi("y", _INT64, ["batch"]), _vi("eps", _FLOAT, ["batch", D])],
        [_vi("x", _FLOAT, ["batch", *IMAGE])],
        {**_decoder_init(w), "embed": w.embed},
    )


def swap_model() -> onnx.ModelProto:
    """x (batch, 1, 4, 4) -> y = 1 - x (a stand-in for "encode with A, decode with B")."""
    return _model(
        [helper.make_node("Sub", ["one", "x"], ["y"])],
        [_vi("x", _FLOAT, ["batch", *IMAGE])],
        [_vi("y", _FLOAT, ["batch", *IMAGE])],
        {"one": np.array(1.0, np.float32)},
    )


def refine_model() -> onnx.ModelProto:
    """x (batch, N), iterations () int64 -> p: an ONNX Loop, p0 = x/2, p <- p + (x - p)/10."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Constant", [], ["tenth"], value=numpy_helper.from_array(np.float32(0.1))),
            helper.make_node("Sub", ["x", "p_in"], ["d"]),
            helper.make_node("Mul", ["d", "tenth"], ["step"]),
            helper.make_node("Add", ["p_in", "step"], ["p_out"]),
        ],
        "body",
        [_vi("i", _INT64, []), _vi("cond_in", _BOOL, []), _vi("p_in", _FLOAT, None)],
        [_vi("cond_out", _BOOL, []), _vi("p_out", _FLOAT, None)],
    )
    nodes = [
        helper.make_node("Mul", ["x", "half"], ["p0"]),
        helper.make_node("Loop", ["iterations", "", "p0"], ["p"], body=body),
    ]
    return _model(
        nodes,
        [_vi("x", _FLOAT, ["batch", N]), _vi("iterations", _INT64, [])],
        [_vi("p", _FLOAT, ["batch", N])],
        {"half": np.array(0.5, np.float32)},
    )


def lstsq_model(w: Weights, masked: bool) -> onnx.ModelProto:
    """z (batch, D), x (batch, N)[, mask] -> loss (batch,), grad_z (batch, D), x_hat (batch, N).

    loss = sum((z W + b - x)^2 * mask, axis=1); grad_z = 2 ((z W + b - x) * mask) W^T.
    """
    nodes = [
        helper.make_node("MatMul", ["z", "w_dec"], ["h"]),
        helper.make_node("Add", ["h", "b_dec"], ["x_hat"]),
        helper.make_node("Sub", ["x_hat", "x"], ["r"]),
        helper.make_node("Mul", ["r", "mask"] if masked else ["r", "one"], ["rm"]),
        helper.make_node("Mul", ["r", "rm"], ["r2"]),
        helper.make_node("ReduceSum", ["r2", "axis1"], ["loss"], keepdims=0),
        helper.make_node("MatMul", ["rm", "w_dec_t"], ["g"]),
        helper.make_node("Mul", ["g", "two"], ["grad_z"]),
    ]
    inputs = [_vi("z", _FLOAT, ["batch", D]), _vi("x", _FLOAT, ["batch", N])]
    if masked:
        inputs.append(_vi("mask", _FLOAT, ["batch", N]))
    init = {
        "w_dec": w.w_dec,
        "b_dec": w.b_dec,
        "w_dec_t": np.ascontiguousarray(w.w_dec.T),
        "axis1": np.array([1], np.int64),
        "two": np.array(2.0, np.float32),
    }
    if not masked:
        init["one"] = np.array(1.0, np.float32)
    outputs = [
        _vi("loss", _FLOAT, ["batch"]),
        _vi("grad_z", _FLOAT, ["batch", D]),
        _vi("x_hat", _FLOAT, ["batch", N]),
    ]
    return _model(nodes, inputs, outputs, init)


def mlp_decode_model(d: int = 20, hidden: int = 400, side: int = 28, seed: int = 0) -> onnx.ModelProto:
    """An MNIST-VAE-shaped decoder: z (batch, 20) -> relu 400 -> sigmoid 784 -> (batch, 1, 28, 28)."""
    rng = np.random.default_rng(seed)
    init = {
        "w1": (rng.normal(size=(d, hidden)) / np.sqrt(d)).astype(np.float32),
        "b1": np.zeros(hidden, np.float32),
        "w2": (rng.normal(size=(hidden, side * side)) / np.sqrt(hidden)).astype(np.float32),
        "b2": np.zeros(side * side, np.float32),
        "shape": np.array([-1, 1, side, side], np.int64),
    }
    nodes = [
        helper.make_node("Gemm", ["z", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["a"]),
        helper.make_node("Sigmoid", ["a"], ["s"]),
        helper.make_node("Reshape", ["s", "shape"], ["x_mean"]),
    ]
    return _model(
        nodes,
        [_vi("z", _FLOAT, ["batch", d])],
        [_vi("x_mean", _FLOAT, ["batch", 1, side, side])],
        init,
    )


# -- manifests ---------------------------------------------------------------------------------


def tensor(name: str, dtype: str, shape: list[Any], meaning: str, **extra: Any) -> dict[str, Any]:
    """One manifest input/output description."""
    spec = {
        "name": name,
        "dtype": dtype,
        "shape": shape,
        "meaning": meaning,
        "latent": None,
        "range": None,
        "distribution": None,
    }
    spec.update(extra)
    return spec


LATENT = tensor("z", "float32", ["batch", D], "latent", latent="z")
IMAGE_OUT = tensor("x_mean", "float32", ["batch", *IMAGE], "image", range=[0.0, 1.0])


def optimize_block(**overrides: Any) -> dict[str, Any]:
    """The optimize block of the least-squares entries; ``overrides`` replace its keys."""
    block = {
        "variable": "z",
        "loss": "loss",
        "gradient": "grad_z",
        "dim": D,
        "graph_outputs": ["x_hat"],
        "steps": 300,
        "lr": 0.1,
        "optimizer": "adam",
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "project": None,
        "radius": 1.0,
        "init": {"kind": "zeros", "value": None, "scale": 0.5},
        "starts": 1,
    }
    block.update(overrides)
    return block


def standard_entries(w: Weights, **optimize: Any) -> dict[str, tuple[onnx.ModelProto, dict[str, Any]]]:
    """Every kind of entry the runtime knows, as (model, manifest entry without file/sha)."""
    x_in = tensor("x", "float32", ["batch", *IMAGE], "image", range=[0.0, 1.0])
    flat = ["batch", N]
    return {
        "decode": (decode_model(w), {"kind": "graph", "inputs": [LATENT], "outputs": [IMAGE_OUT]}),
        "encode": (
            encode_model(w),
            {
                "kind": "graph",
                "inputs": [x_in],
                "code": "z_mu",
                "outputs": [
                    tensor("z_mu", "float32", ["batch", D], "latent", latent="z"),
                    tensor("z_logvar", "float32", ["batch", D], "value"),
                ],
            },
        ),
        "sample": (
            decode_model(w, "eps"),
            {
                "kind": "graph",
                "inputs": [tensor("eps", "float32", ["batch", D], "noise", distribution="normal")],
                "outputs": [IMAGE_OUT],
            },
        ),
        "generate": (
            generate_model(w),
            {
                "kind": "graph",
                "inputs": [
                    tensor("y", "int64", ["batch"], "label", range=[0, 2]),
                    tensor("eps", "float32", ["batch", D], "noise", distribution="normal"),
                ],
                "outputs": [tensor("x", "float32", ["batch", *IMAGE], "image", range=[0.0, 1.0])],
            },
        ),
        "swap": (
            swap_model(),
            {
                "kind": "graph",
                "inputs": [x_in],
                "outputs": [tensor("y", "float32", ["batch", *IMAGE], "image", range=[0.0, 1.0])],
            },
        ),
        "refine": (
            refine_model(),
            {
                "kind": "graph",
                "inputs": [
                    tensor("x", "float32", flat, "value"),
                    tensor("iterations", "int64", [], "iterations", default=3),
                ],
                "outputs": [tensor("p", "float32", flat, "value")],
            },
        ),
        "invert": (
            lstsq_model(w, masked=False),
            {
                "kind": "optimize",
                "inputs": [tensor("x", "float32", flat, "value")],
                "outputs": [tensor("x_hat", "float32", flat, "value"), LATENT],
                "optimize": optimize_block(**optimize),
            },
        ),
        "inpaint": (
            lstsq_model(w, masked=True),
            {
                "kind": "optimize",
                "inputs": [
                    tensor("x", "float32", flat, "value"),
                    tensor("mask", "float32", flat, "mask", range=[0.0, 1.0]),
                ],
                "outputs": [tensor("x_hat", "float32", flat, "value"), LATENT],
                "optimize": optimize_block(**optimize),
            },
        ),
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(
    root: Path,
    entries: dict[str, tuple[onnx.ModelProto, dict[str, Any]]],
    *,
    name: str = "tiny",
    directions: dict[str, Any] | None = None,
    **manifest_keys: Any,
) -> Path:
    """Write models and a manifest with correct sha256s into ``root``; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    manifest_entries: dict[str, Any] = {}
    for entry, (model, about) in entries.items():
        file = f"{entry}.onnx"
        onnx.save(model, root / file)
        files[file] = sha256(root / file)
        manifest_entries[entry] = {
            "kind": about["kind"],
            "file": file,
            "sha256": files[file],
            "opset": OPSET,
            "inputs": about["inputs"],
            "outputs": about["outputs"],
            "code": about.get("code"),
            "optimize": about.get("optimize"),
        }
    spec_text = f"latentspec: 1\nname: {name}\n"
    manifest = {
        "format": "latentspec.bundle",
        "format_version": 1,
        "latentspec_version": "0.1.0",
        "name": name,
        "spec": {"text": spec_text, "sha256": hashlib.sha256(spec_text.encode()).hexdigest()},
        "latents": {"z": {"dim": D, "prior": "normal", "project": None}},
        "entries": manifest_entries,
        "directions": directions if directions is not None else {"up": {"latent": "z", "vector": [1.0, 0, 0, 0]}},
        "metrics": {"test": {"neg_elbo": 12.5}},
        "files": files,
    }
    manifest.update(manifest_keys)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def make_bundle(root: Path, only: tuple[str, ...] | None = None, **optimize: Any) -> Path:
    """The standard tiny bundle (all entries, or ``only`` those) in ``root``."""
    entries = standard_entries(Weights(), **optimize)
    if only is not None:
        entries = {k: v for k, v in entries.items() if k in only}
    return write_bundle(root, entries)


def edit_manifest(root: Path, change: Any) -> None:
    """Load manifest.json, let ``change(manifest)`` edit it in place, write it back."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
