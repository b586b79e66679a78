"""``latentspec-runtime serve``: every entry of a VAE, a GLO and a feedback bundle over HTTP, by JSON,
``.npy`` and PNG, against the Python API; input errors, size limits, the token, OpenAPI, metrics
and micro-batching. One server (in this process, on a free loopback port) serves all tests."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import _bundles
import numpy as np
import pytest
from _serve_util import (
    TOKEN,
    Server,
    call,
    get,
    metric,
    multipart,
    npy,
    png,
    post,
    post_json,
    served,
    vae_bundle,
)

from latentspec_runtime import Bundle, InputError
from latentspec_runtime._images import to_uint8

MAX_BODY = 64 << 10
MAX_ITEMS = 64


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("serve")
    token_config = {"token": TOKEN, "max_body": MAX_BODY, "max_items": MAX_ITEMS, "max_batch": 32, "max_wait": 0.05}
    with served(tmp, **token_config) as (srv, bundles):
        yield srv.port, bundles


def _x(seed: int, n: int | None = None) -> np.ndarray:
    """Images in [0, 1] on the 8-bit grid, so that a PNG holds them exactly."""
    rng = np.random.default_rng(seed)
    shape = (1, 4, 4) if n is None else (n, 1, 4, 4)
    return (np.round(rng.random(shape) * 255) / 255).astype(np.float32)


# -- VAE -----------------------------------------------------------------------------------------


def test_vae_encode_decode_sample_by_json(server) -> None:
    port, b = server
    x = _x(0, 3)
    r = post_json(port, "/v1/vae/encode", {"inputs": {"x": x.tolist()}})
    assert r.status == 200, r
    out = r.json()["outputs"]
    want = b["vae"].encode(x)
    np.testing.assert_allclose(out["z_mu"], want["z_mu"], atol=1e-6)
    np.testing.assert_allclose(out["z_logvar"], want["z_logvar"], atol=1e-6)

    z = np.random.default_rng(1).standard_normal(4).astype(np.float32)
    r = post_json(port, "/v1/vae/decode", {"inputs": {"z": z.tolist()}})  # one item: no batch axis
    assert np.asarray(r.json()["outputs"]["x_mean"]).shape == (1, 4, 4)
    np.testing.assert_allclose(r.json()["outputs"]["x_mean"], b["vae"].decode(z), atol=1e-6)

    r = post_json(port, "/v1/vae/sample", {"inputs": {}, "n": 3, "seed": 5})
    np.testing.assert_allclose(r.json()["outputs"]["x_mean"], b["vae"].sample(3, seed=5), atol=1e-6)
    r = post_json(port, "/v1/vae/sample?n=2&seed=7", {"inputs": {}})  # options in the query string
    np.testing.assert_allclose(r.json()["outputs"]["x_mean"], b["vae"].sample(2, seed=7), atol=1e-6)


def test_vae_entries_by_png(server) -> None:
    port, b = server
    x = _x(2)
    r = post(port, "/v1/vae/encode", png(x), "image/png")  # a PNG upload for the image input
    assert r.status == 200, r
    np.testing.assert_allclose(r.json()["outputs"]["z_mu"], b["vae"].code(x), atol=1e-5)

    z = np.random.default_rng(3).standard_normal((1, 4)).astype(np.float32)
    r = post_json(port, "/v1/vae/decode", {"inputs": {"z": z.tolist()}}, accept="image/png")
    np.testing.assert_array_equal(r.image(), to_uint8(b["vae"].decode(z)[0, 0], (0.0, 1.0)))

    r = post(port, "/v1/vae/sample?n=4&seed=1", b"", "application/json", accept="image/png")
    grid = r.image()
    assert grid.shape == (4 + 2 + 4, 4 + 2 + 4)  # 2x2 grid of 4x4 images, 2-pixel gaps
    want = to_uint8(b["vae"].sample(4, seed=1), (0.0, 1.0))
    np.testing.assert_array_equal(grid[6:, 6:], want[3, 0])

    r = post(port, "/v1/vae/sample?n=3&rows=1", b"", "application/json", accept="image/png")
    assert r.image().shape == (4, 3 * 4 + 2 * 2)  # one row


def test_npy_body_and_npy_answer(server) -> None:
    port, b = server
    z = np.random.default_rng(4).standard_normal((5, 4)).astype(np.float32)
    r = post(port, "/v1/vae/decode", npy(z), "application/x-npy", accept="application/x-npy")
    assert r.status == 200 and r.headers["content-type"] == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(r.body)), b["vae"].decode(z), atol=1e-6)


# -- GLO -----------------------------------------------------------------------------------------


def test_glo_decode_invert_inpaint_by_json(server) -> None:
    port, b = server
    glo = b["glo"]
    x = _x(5, 2).reshape(2, 16)
    mask = np.ones((2, 16), np.float32)
    mask[:, 8:] = 0
    r = post_json(port, "/v1/glo/invert", {"inputs": {"x": x.tolist()}})
    assert r.status == 200, r
    want = glo.invert(x)
    np.testing.assert_allclose(r.json()["outputs"]["z"], want["z"], atol=1e-5)
    np.testing.assert_allclose(r.json()["outputs"]["loss"], want["loss"], rtol=1e-5)
    r = post_json(port, "/v1/glo/inpaint", {"inputs": {"x": x.tolist(), "mask": mask.tolist()}})
    np.testing.assert_allclose(r.json()["outputs"]["x_hat"], glo.inpaint(x, mask)["x_hat"], atol=1e-5)
    r = post_json(port, "/v1/glo/decode", {"inputs": {"z": want["z"].tolist()}})
    np.testing.assert_allclose(r.json()["outputs"]["x_mean"], glo.decode(want["z"]), atol=1e-6)


def test_glo_entries_by_png(server) -> None:
    port, b = server
    glo = b["glo"]
    x = _x(6)
    mask = np.ones((1, 4, 4), np.float32)
    mask[:, 2:] = 0
    body, ctype = multipart([("x", png(x), "image/png"), ("mask", png(mask), "image/png")])
    r = post(port, "/v1/glo/inpaint", body, ctype)
    assert r.status == 200, r
    want = glo.inpaint(x.reshape(16), mask.reshape(16))  # a flat input: the PNG is flattened
    np.testing.assert_allclose(r.json()["outputs"]["x_hat"], want["x_hat"], atol=1e-5)

    r = post(port, "/v1/glo/inpaint", body, ctype, accept="image/png")
    assert r.image().shape == (4, 4)  # the flat output shown as the bundle's 4x4 image

    r = post(port, "/v1/glo/invert", png(x), "image/png")
    np.testing.assert_allclose(r.json()["outputs"]["z"], glo.invert(x.reshape(16))["z"], atol=1e-5)

    # A batch as repeated file fields; the seed as a form field.
    body, ctype = multipart([("x", png(x), "image/png"), ("x", png(1 - x), "image/png"), ("seed", "3", None)])
    r = post(port, "/v1/glo/invert", body, ctype, accept="image/png")
    assert r.image().shape == (4, 4 + 2 + 4)


# -- feedback ------------------------------------------------------------------------------------


def test_feedback_refine_by_json_and_png(server) -> None:
    port, b = server
    fb = b["feedback"]
    x = _x(7, 2)
    r = post_json(port, "/v1/feedback/refine", {"inputs": {"x": x.tolist()}, "iterations": 5})
    assert r.status == 200, r
    np.testing.assert_allclose(r.json()["outputs"]["p"], fb.refine(x, iterations=5), atol=1e-6)
    r = post_json(port, "/v1/feedback/refine", {"inputs": {"x": x.tolist()}})  # the manifest's default, 3
    np.testing.assert_allclose(r.json()["outputs"]["p"], fb.refine(x), atol=1e-6)

    r = post(port, "/v1/feedback/refine?iterations=2", png(x[0]), "image/png")
    np.testing.assert_allclose(r.json()["outputs"]["p"], fb.refine(x[0], iterations=2), atol=1e-6)
    r = post(port, "/v1/feedback/refine?iterations=2", png(x[0]), "image/png", accept="image/png")
    assert r.image().shape == (4, 4)


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "doc", "status", "name", "words"),
    [
        ("/v1/vae/decode", {"inputs": {"z": [[0.0, 1.0, 2.0]]}}, 422, "z", "has shape [1, 3], expected [batch, 4]"),
        ("/v1/vae/encode", {"inputs": {"x": np.full((1, 1, 4, 4), 2.0).tolist()}}, 422, "x", "must lie in [0, 1]"),
        ("/v1/vae/decode", {"inputs": {"zz": [0, 0, 0, 0]}}, 422, "zz", "did you mean 'z'"),
        ("/v1/glo/inpaint", {"inputs": {"x": [[0.5] * 16]}}, 422, "mask", "missing input 'mask'"),
        (
            "/v1/glo/inpaint",
            {"inputs": {"x": [[0.5] * 16] * 2, "mask": [[1.0] * 16] * 3}},
            422,
            "mask",
            "has batch size 3 but input 'x' has 2",
        ),
        ("/v1/vae/decode", {"inputs": {"z": [[0, 1], [2]]}}, 400, "z", "nested lists of equal lengths"),
        ("/v1/vae/encode", {"inputs": {"x": "data:image/png;base64,AAAA"}}, 400, "x", "cannot read the upload"),
        ("/v1/vae/decode", {"inputs": {"z": [0, 0, 0, 0]}, "iterations": 2}, 422, None, "no iterations input"),
        ("/v1/vae/decode", {"inputs": {"z": [0, 0, 0, 0]}, "seed": -1}, 400, "seed", "seed must be an integer"),
        ("/v1/vae/decode", {"inputs": {"z": [0, 0, 0, 0]}, "extra": 1}, 400, None, "unknown key(s) 'extra'"),
    ],
)
def test_bad_inputs_get_4xx_naming_the_input(server, path, doc, status, name, words) -> None:
    port, _ = server
    r = post_json(port, path, doc)
    assert r.status == status, r
    body = r.json()
    assert words in body["error"]
    assert body.get("input") == name


def test_errors_match_the_python_api(server) -> None:
    port, b = server
    z = np.zeros((2, 3), np.float32)
    with pytest.raises(InputError) as err:
        b["vae"].decode(z)
    r = post_json(port, "/v1/vae/decode", {"inputs": {"z": z.tolist()}})
    assert r.json()["error"] == str(err.value)


def test_bad_bodies(server) -> None:
    port, _ = server
    r = post(port, "/v1/vae/encode", png(np.zeros((1, 5, 5))), "image/png")
    assert r.status == 422 and r.json()["input"] == "x" and "5x5 pixels, the entry takes 4x4" in r.json()["error"]
    r = post(port, "/v1/glo/inpaint", png(np.zeros((1, 4, 4))), "image/png")
    assert r.status == 415 and "takes several inputs (x, mask)" in r.json()["error"]
    r = post(port, "/v1/vae/decode", b"{not json", "application/json")
    assert r.status == 400 and "not valid JSON" in r.json()["error"]
    r = post(port, "/v1/vae/decode", b"z=1", "application/x-www-form-urlencoded")
    assert r.status == 415
    r = post(port, "/v1/vae/encode", b"\x93NUMPY garbage", "application/x-npy")
    assert r.status == 400 and r.json()["input"] == "x"
    r = post_json(port, "/v1/vae/decode", {"inputs": {"z": [0, 0, 0, 0]}}, accept="text/html")
    assert r.status == 406
    r = post_json(port, "/v1/vae/encode", {"inputs": {"x": np.zeros((1, 4, 4)).tolist()}}, accept="image/png")
    assert r.status == 406 and "no image output" in r.json()["error"]
    r = post_json(port, "/v1/vae/nope", {"inputs": {}})
    assert r.status == 404 and r.json()["kind"] == "not_found"


def test_oversized_requests_get_413(server) -> None:
    port, _ = server
    r = post(port, "/v1/vae/decode", b"0" * (MAX_BODY + 1), "application/json")
    assert r.status == 413 and r.json()["kind"] == "too_large"
    r = post_json(port, "/v1/vae/decode", {"inputs": {"z": np.zeros((MAX_ITEMS + 1, 4)).tolist()}})
    assert r.status == 413 and f"at most {MAX_ITEMS}" in r.json()["error"]
    r = post_json(port, "/v1/vae/sample", {"inputs": {}, "n": MAX_ITEMS + 1})
    assert r.status == 413


# -- token, health, OpenAPI, metrics ---------------------------------------------------------------


def test_token_guards_everything_but_health(server) -> None:
    port, _ = server
    doc = {"inputs": {"z": [0, 0, 0, 0]}}
    for token in (None, "wrong"):
        r = post_json(port, "/v1/vae/decode", doc, token=token)
        assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
        for path in ("/metrics", "/v1", "/v1/vae", "/openapi.json", "/docs"):
            assert get(port, path, token=token).status == 401, path
    assert post_json(port, "/v1/vae/decode", doc).status == 200
    assert get(port, "/healthz", token=None).json() == {"status": "ok"}
    assert get(port, "/readyz", token=None).json() == {"status": "ready"}


def test_openapi_is_generated_from_the_manifest(server) -> None:
    port, _ = server
    api = get(port, "/openapi.json").json()
    op = api["paths"]["/v1/vae/encode"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]["properties"]["inputs"]
    x = schema["properties"]["x"]
    assert x["description"] == "float32 [batch, 1, 4, 4] image in [0, 1]"
    batched = x["anyOf"][0]
    assert batched["x-shape"] == ["batch", 1, 4, 4] and batched["x-meaning"] == "image"
    assert batched["items"]["minItems"] == 1 and batched["items"]["items"]["items"]["maxItems"] == 4
    assert batched["items"]["items"]["items"]["items"] == {"type": "number", "minimum": 0.0, "maximum": 1.0}
    assert "image/png" in op["requestBody"]["content"]
    assert schema["required"] == ["x"]
    sample = api["paths"]["/v1/vae/sample"]["post"]
    assert "noise ~ normal" in sample["description"]
    refine = api["paths"]["/v1/feedback/refine"]["post"]
    assert any(p["name"] == "iterations" for p in refine["parameters"])
    assert "image/png" in refine["responses"]["200"]["content"]


def test_bundle_description(server) -> None:
    port, _ = server
    info = get(port, "/v1/vae").json()
    assert list(info["entries"]) == ["encode", "decode", "sample"]
    assert info["entries"]["encode"]["code"] == "z_mu"
    assert [e["task"] for e in info["entries"].values()] == ["encode", "decode", "sample"]
    assert info["directions"]["up"]["vector"] == [1.0, 0, 0, 0]
    assert info["metrics"] == {"test": {"neg_elbo": 12.5}}
    assert get(port, "/v1").json()["bundles"][0]["name"] == "vae"


def test_metrics_count_requests_and_errors(server) -> None:
    port, _ = server
    before = get(port, "/metrics").body.decode()
    for _ in range(3):
        assert post_json(port, "/v1/glo/decode", {"inputs": {"z": [0, 0, 0, 0]}}).status == 200
    post_json(port, "/v1/glo/decode", {"inputs": {"z": [0, 0, 0]}})
    after = get(port, "/metrics").body.decode()

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("latentspec_requests_total", bundle="glo", entry="decode", status="200") == 3
    assert delta("latentspec_requests_total", bundle="glo", entry="decode", status="422") == 1
    assert delta("latentspec_errors_total", bundle="glo", entry="decode", kind="invalid_input") == 1
    assert delta("latentspec_request_duration_seconds_count", bundle="glo", entry="decode") == 4
    assert delta("latentspec_batch_requests_sum", bundle="glo", entry="decode") == 4  # checks run in the batch
    assert metric(after, "latentspec_ready") == 1


def test_micro_batching_merges_concurrent_requests(server) -> None:
    port, b = server
    clients = 12
    zs = np.random.default_rng(8).standard_normal((clients, 4)).astype(np.float32)
    for _ in range(5):  # concurrent arrival is likely, not certain: a few rounds
        before = get(port, "/metrics").body.decode()
        barrier = threading.Barrier(clients)
        replies: list = [None] * clients

        def client(i: int, barrier: threading.Barrier, replies: list) -> None:
            barrier.wait()
            replies[i] = post_json(port, "/v1/vae/decode", {"inputs": {"z": zs[i].tolist()}})

        threads = [threading.Thread(target=client, args=(i, barrier, replies)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, r in enumerate(replies):  # each request gets its own rows back
            assert r.status == 200, r
            np.testing.assert_allclose(r.json()["outputs"]["x_mean"], b["vae"].decode(zs[i]), atol=1e-6)
        after = get(port, "/metrics").body.decode()
        runs = metric(after, "latentspec_batch_requests_count", bundle="vae", entry="decode") - metric(
            before, "latentspec_batch_requests_count", bundle="vae", entry="decode"
        )
        requests = metric(after, "latentspec_batch_requests_sum", bundle="vae", entry="decode") - metric(
            before, "latentspec_batch_requests_sum", bundle="vae", entry="decode"
        )
        assert requests == clients
        if runs < clients:
            break
    assert runs < clients, "no two concurrent requests were merged into one run"
    merged = metric(after, "latentspec_batch_requests_bucket", bundle="vae", entry="decode", le="1.0")
    assert merged < metric(after, "latentspec_batch_requests_count", bundle="vae", entry="decode")


def test_merged_batch_with_one_bad_request_answers_each(server) -> None:
    port, b = server
    x = _x(9)
    docs = [{"inputs": {"x": x.tolist()}}] * 5 + [{"inputs": {"x": (x + 2).tolist()}}]  # the last: out of range
    replies: list = [None] * len(docs)
    barrier = threading.Barrier(len(docs))

    def client(i: int) -> None:
        barrier.wait()
        replies[i] = post_json(port, "/v1/vae/encode", docs[i])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(docs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in replies[:5]:
        np.testing.assert_allclose(r.json()["outputs"]["z_mu"], b["vae"].code(x), atol=1e-6)
    assert replies[5].status == 422 and replies[5].json()["input"] == "x"


def test_page_and_static_files_are_served(server) -> None:
    port, _ = server
    page = call(port, "GET", "/")
    assert page.status == 200 and b"latentspec explorer" in page.body
    assert call(port, "GET", "/static/explorer.js").status == 200
    assert call(port, "GET", "/static/explorer.css").status == 200


def test_two_bundles_with_one_name_are_refused(tmp_path: Path) -> None:
    from latentspec_runtime.serve import create_app

    a = Bundle.load(vae_bundle(tmp_path / "a"), device="cpu")
    b = Bundle.load(vae_bundle(tmp_path / "b"), device="cpu")
    with pytest.raises(ValueError, match="both named 'vae'"):
        create_app([a, b])


def test_readyz_fails_while_an_entry_cannot_run(tmp_path: Path) -> None:
    root = vae_bundle(tmp_path / "vae.bundle")

    def rename_input(m: dict) -> None:  # the manifest now disagrees with decode.onnx
        m["entries"]["decode"]["inputs"][0]["name"] = "w"

    _bundles.edit_manifest(root, rename_input)
    server = Server([Bundle.load(root, device="cpu")])
    server.thread.start()
    try:
        for _ in range(600):
            r = get(server.port, "/readyz", token=None)
            if r.status == 503 and r.json()["status"] == "failed":
                break
            time.sleep(0.05)
        assert r.status == 503 and "vae/decode" in r.json()["errors"][0]
        assert "does not match entry 'decode'" in r.json()["errors"][0]
        assert get(server.port, "/healthz", token=None).status == 200
        r = post_json(server.port, "/v1/vae/decode", {"inputs": {"w": [0, 0, 0, 0]}}, token=None)
        assert r.status == 500 and r.json()["kind"] == "runtime"
    finally:
        server.__exit__()
