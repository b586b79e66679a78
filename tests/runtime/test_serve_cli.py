"""``latentspec-runtime serve`` as a process: start-up, usage errors, and a graceful shutdown that
finishes the requests in flight."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _serve_util import call, feedback_bundle, get, metric, post_json, vae_bundle, wait_ready

from latentspec_runtime import Bundle


@contextlib.contextmanager
def _serving(args: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, int]]:
    """The server as a child process; its port from the start-up line; pipes closed at the end."""
    with subprocess.Popen(
        [sys.executable, "-m", "latentspec_runtime", "serve", *args, "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            line = proc.stdout.readline()  # "latentspec-runtime: serving NAMES on http://127.0.0.1:PORT/ ..."
            assert "serving" in line, f"no start-up line: {line!r}"
            yield proc, int(line.split("http://127.0.0.1:")[1].split("/")[0])
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def test_shutdown_loses_no_request_in_flight(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    root = feedback_bundle(tmp_path / "feedback.bundle")
    with _serving([str(root)], subprocess_env) as (proc, port):
        wait_ready(port)
        x = np.random.default_rng(0).random((2, 1, 4, 4)).astype(np.float32)
        iterations = 500_000  # about a second: long enough to be in flight when the signal comes
        reply: list = []
        client = threading.Thread(
            target=lambda: reply.append(
                post_json(port, "/v1/feedback/refine", {"inputs": {"x": x.tolist()}, "iterations": iterations}, None)
            )
        )
        client.start()
        deadline = time.monotonic() + 30
        while metric(get(port, "/metrics", None).body.decode(), "latentspec_requests_in_progress") < 2:
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        client.join(timeout=60)
        assert proc.wait(timeout=60) == 0
    assert reply and reply[0].status == 200, reply
    want = Bundle.load(root, device="cpu").refine(x, iterations=iterations)
    np.testing.assert_allclose(reply[0].json()["outputs"]["p"], want, atol=1e-5)
    with pytest.raises(OSError):  # and it listens no more
        call(port, "GET", "/healthz", timeout=5)


def test_serve_with_a_token_file(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    root = vae_bundle(tmp_path / "vae.bundle")
    token = tmp_path / "token"
    token.write_text("abc123\n")
    with _serving([str(root), "--token-file", str(token), "--max-batch", "1"], subprocess_env) as (proc, port):
        wait_ready(port)
        doc = {"inputs": {"z": [0.0, 0.0, 0.0, 0.0]}}
        assert post_json(port, "/v1/vae/decode", doc, token=None).status == 401
        r = post_json(port, "/v1/vae/decode", doc, token="abc123")
        assert r.status == 200
        np.testing.assert_allclose(
            r.json()["outputs"]["x_mean"], Bundle.load(root, device="cpu").decode(np.zeros(4, np.float32)), atol=1e-6
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "latentspec_runtime", "serve", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_usage_errors_are_one_line(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    a = vae_bundle(tmp_path / "a")
    b = vae_bundle(tmp_path / "b")
    r = _run([str(tmp_path / "missing")], subprocess_env)
    assert r.returncode == 1 and r.stderr.startswith("latentspec-runtime: error: ") and "Traceback" not in r.stderr
    r = _run([str(a), str(b)], subprocess_env)
    assert r.returncode == 2 and "both named 'vae'" in r.stderr
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    r = _run([str(a), "--token-file", str(empty)], subprocess_env)
    assert r.returncode == 2 and "must hold one token" in r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = _run([str(a), "--port", str(port)], subprocess_env)
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_help_names_the_options(subprocess_env: dict[str, str]) -> None:
    r = _run(["--help"], subprocess_env)
    assert r.returncode == 0
    for option in ("--host", "--port", "--token-file", "--max-batch", "--max-wait-ms", "--max-body-mb"):
        assert option in r.stdout
    assert "default 127.0.0.1" in r.stdout
