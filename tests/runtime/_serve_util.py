"""Bundles and helpers for the serve tests: a VAE, a GLO (invert, inpaint) and a feedback (refine)
bundle built from the tiny linear model of ``_bundles``, a server on a free loopback port, and a
small stdlib HTTP client."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _bundles
import numpy as np
import onnx
from _bundles import IMAGE, Weights, standard_entries, tensor, write_bundle
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from latentspec_runtime import Bundle

TOKEN = "s3cret-token"


def vae_bundle(root: Path) -> Path:
    """encode, decode, sample; a direction, factor groups (DC-IGN style) and a claim."""
    entries = standard_entries(Weights())
    latents = {"z": {"dim": 4, "prior": "normal", "project": None, "groups": {"azimuth": [0], "light": [1, 2]}}}
    claims = [{"name": "elbo", "claim": "test.neg_elbo < 20", "value": 12.5, "holds": True}]
    return write_bundle(
        root, {k: entries[k] for k in ("encode", "decode", "sample")}, name="vae", latents=latents, claims=claims
    )


def glo_bundle(root: Path, steps: int = 40) -> Path:
    entries = standard_entries(Weights(), steps=steps)
    return write_bundle(root, {k: entries[k] for k in ("decode", "invert", "inpaint")}, name="glo")


def image_refine_model() -> onnx.ModelProto:
    """x (batch, 1, 4, 4), iterations () -> p: p0 = x/2, p <- p + (x - p)/10 (an ONNX Loop)."""
    vi = helper.make_tensor_value_info
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Constant", [], ["tenth"], value=numpy_helper.from_array(np.float32(0.1))),
            helper.make_node("Sub", ["x", "p_in"], ["d"]),
            helper.make_node("Mul", ["d", "tenth"], ["step"]),
            helper.make_node("Add", ["p_in", "step"], ["p_out"]),
        ],
        "body",
        [vi("i", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("p_in", TensorProto.FLOAT, None)],
        [vi("cond_out", TensorProto.BOOL, []), vi("p_out", TensorProto.FLOAT, None)],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "half"], ["p0"]),
            helper.make_node("Loop", ["iterations", "", "p0"], ["p"], body=body),
        ],
        "g",
        [vi("x", TensorProto.FLOAT, ["batch", *IMAGE]), vi("iterations", TensorProto.INT64, [])],
        [vi("p", TensorProto.FLOAT, ["batch", *IMAGE])],
        [numpy_helper.from_array(np.array(0.5, np.float32), "half")],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _bundles.OPSET)], ir_version=_bundles.IR_VERSION
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def feedback_bundle(root: Path) -> Path:
    """One ``refine`` entry: a depth-like image in, the refined estimate out (here an image too)."""
    about = {
        "kind": "graph",
        "inputs": [
            tensor("x", "float32", ["batch", *IMAGE], "image", range=[0.0, 1.0]),
            tensor("iterations", "int64", [], "iterations", default=3),
        ],
        "outputs": [tensor("p", "float32", ["batch", *IMAGE], "value")],
    }
    return write_bundle(root, {"refine": (image_refine_model(), about)}, name="feedback", directions={})


# -- a server in this process ----------------------------------------------------------------


class Server:
    """``create_app`` under uvicorn in a thread, on a free loopback port."""

    def __init__(self, bundles: list[Bundle], **config: Any) -> None:
        import uvicorn

        from latentspec_runtime.serve import ServeConfig, create_app

        self.app = create_app(bundles, ServeConfig(**config))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        wait_ready(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def wait_ready(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if call(port, "GET", "/readyz").status == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the server on port {port} did not become ready in {timeout} s")


# -- a client ----------------------------------------------------------------------------------


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def image(self) -> np.ndarray:
        """A PNG answer as uint8 (H, W) or (H, W, C)."""
        assert self.headers.get("content-type") == "image/png", (self.status, self.body[:300])
        return np.asarray(Image.open(io.BytesIO(self.body)))

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def post_json(port: int, path: str, doc: Any, token: str | None = TOKEN, accept: str | None = None) -> Reply:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if accept:
        headers["Accept"] = accept
    return call(port, "POST", path, json.dumps(doc).encode(), headers)


def post(port: int, path: str, body: bytes, content_type: str, token: str | None = TOKEN, **headers: str) -> Reply:
    h = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return call(port, "POST", path, body, h)


def get(port: int, path: str, token: str | None = TOKEN) -> Reply:
    return call(port, "GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})


def png(values: np.ndarray) -> bytes:
    """(1, H, W) or (H, W) values in [0, 1] as an 8-bit grayscale PNG."""
    pixels = np.round(np.clip(values.reshape(values.shape[-2:]), 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def multipart(fields: list[tuple[str, str | bytes, str | None]]) -> tuple[bytes, str]:
    """``(name, value, content_type)`` parts (bytes: a file part) -> body and Content-Type."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value, ctype in fields:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, bytes):
            out.write(f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'.encode())
            out.write(f"Content-Type: {ctype or 'application/octet-stream'}\r\n\r\n".encode())
            out.write(value)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    head = f"{name}{{{want}}}" if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == head or (labels and key.startswith(name + "{") and _same_labels(key, labels, name)):
            return float(value)
    return 0.0


def _same_labels(key: str, labels: dict[str, str], name: str) -> bool:
    inside = key[len(name) + 1 : -1]
    pairs = dict(p.split("=", 1) for p in inside.split(",") if p)
    return {k: v.strip('"') for k, v in pairs.items()} == labels


@contextlib.contextmanager
def served(tmp: Path, **config: Any) -> Iterator[tuple[Server, dict[str, Bundle]]]:
    """The three test bundles behind one server; also the bundles themselves, for references."""
    bundles = {
        "vae": Bundle.load(vae_bundle(tmp / "vae.bundle"), device="cpu"),
        "glo": Bundle.load(glo_bundle(tmp / "glo.bundle"), device="cpu"),
        "feedback": Bundle.load(feedback_bundle(tmp / "feedback.bundle"), device="cpu"),
    }
    with Server(list(bundles.values()), **config) as server:
        yield server, bundles
