"""The FastAPI application: one endpoint per entry point, health, metrics and the explorer page."""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from .._bundle import Bundle
from .._manifest import BundleError, InputError
from ._batch import Batcher, run_jobs
from ._entries import Entry, entries_of, prepare
from ._io import (
    JSON,
    NPY,
    PNG,
    RequestError,
    choose_type,
    from_image,
    from_npy,
    json_body,
    npy_body,
    parse_json,
    parse_multipart,
    parse_options,
    pick_output,
    png_body,
    single_input,
)
from ._metrics import KIND_BY_STATUS, Metrics
from ._openapi import entry_description, entry_operation

STATIC = Path(__file__).resolve().parent / "static"
LOG = logging.getLogger("latentspec_runtime.serve")
_INPUT_NAME = re.compile(r"input '([^']+)'")


@dataclass(frozen=True)
class ServeConfig:
    """Limits and options of a server.

    ``max_batch``: most rows in one merged run (1 turns micro-batching off); ``max_wait``:
    seconds a batch waits for more requests; ``max_body``: bytes per request body (413 above);
    ``max_items``: rows per request (413 above); ``token``: bearer token for everything but
    health and the explorer's static files (None: no token).
    """

    max_batch: int = 64
    max_wait: float = 0.002
    max_body: int = 16 << 20
    max_items: int = 1024
    token: str | None = None


class _State:
    """What the routes share: the bundles, their entries and batchers, metrics, readiness."""

    def __init__(self, bundles: dict[str, Bundle], config: ServeConfig) -> None:
        self.bundles = bundles
        self.config = config
        self.metrics = Metrics()
        self.entries: dict[str, dict[str, Entry]] = {name: entries_of(b, name) for name, b in bundles.items()}
        self.batchers = {
            (name, e.name): Batcher(
                bundles[name], e, config.max_batch, config.max_wait, self.metrics.observer(name, e.name)
            )
            for name, entries in self.entries.items()
            for e in entries.values()
        }
        self.ready = threading.Event()
        self.warm_errors: list[str] = []

    def warm(self) -> None:
        """Create every session and run each entry once on a small made-up input."""
        for name, entries in self.entries.items():
            for e in entries.values():
                given = {}
                for t in e.data_inputs:
                    if not t.fixed_item:
                        break
                    lo = t.range[0] if t.range is not None else 0
                    given[t.name] = np.full((1, *t.item) if t.batched else t.item, lo, dtype=t.dtype)
                else:
                    try:
                        result = run_jobs(self.bundles[name], e, [prepare(e, given, seed=0, n=1, iterations=None)])[0]
                    except ValueError:  # made-up inputs it refuses: its session is created on first use
                        continue
                    if isinstance(result, BundleError):  # onnxruntime cannot load or run the entry
                        self.warm_errors.append(f"{name}/{e.name}: {result}")
        if not self.warm_errors:
            self.ready.set()
            self.metrics.ready.set(1)
        for line in self.warm_errors:
            LOG.error("not ready: %s", line)


def _name_bundles(bundles: Sequence[Bundle]) -> dict[str, Bundle]:
    named: dict[str, Bundle] = {}
    for b in bundles:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", b.name):
            raise ValueError(f"{b.path}: bundle name {b.name!r} cannot be part of a URL path")
        if b.name in named:
            raise ValueError(
                f"{named[b.name].path} and {b.path} are both named {b.name!r}; serve bundles with different names"
            )
        named[b.name] = b
    return named


def create_app(bundles: Sequence[Bundle], config: ServeConfig | None = None) -> FastAPI:
    """A FastAPI app serving ``bundles`` (loaded ``Bundle`` objects), each under its name.

    >>> app = create_app([Bundle.load("vae_mnist.bundle")])  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    config = config or ServeConfig()
    state = _State(_name_bundles(bundles), config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=state.warm, name="latentspec-warm", daemon=True).start()
        yield
        for batcher in state.batchers.values():
            await batcher.close()

    app = FastAPI(
        title="latentspec-runtime",
        version=__version__,
        description="Entry points of latentspec bundles over HTTP. Inputs: JSON arrays, .npy bodies or "
        "PNG uploads; outputs: JSON, PNG or .npy by the Accept header.",
        lifespan=lifespan,
    )
    app.state.serve = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = KIND_BY_STATUS.get(exc.status_code, "http")
        return JSONResponse({"error": str(exc.detail), "kind": kind}, status_code=exc.status_code)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Every session is created and warm")
    async def readyz() -> JSONResponse:
        if state.ready.is_set():
            return JSONResponse({"status": "ready"})
        status = "failed" if state.warm_errors else "warming"
        return JSONResponse({"status": status, "errors": state.warm_errors}, status_code=503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1", tags=["bundles"], summary="The served bundles and their entry points")
    async def bundles_index() -> dict[str, Any]:
        return {
            "bundles": [
                {"name": name, "path": f"/v1/{name}", "entries": list(entries)}
                for name, entries in state.entries.items()
            ]
        }

    for name in state.entries:
        _add_bundle_routes(app, state, name)
    app.add_middleware(_Guard, state=state)
    return app


def _add_bundle_routes(app: FastAPI, state: _State, name: str) -> None:
    bundle = state.bundles[name]
    entries = state.entries[name]

    async def describe() -> dict[str, Any]:
        return _describe(name, bundle, entries)

    app.add_api_route(
        f"/v1/{name}",
        describe,
        methods=["GET"],
        tags=[name],
        summary=f"Bundle {name}: entries, latents, directions, claims and metrics",
    )
    for entry in entries.values():
        app.add_api_route(
            f"/v1/{name}/{entry.name}",
            _endpoint(state, entry),
            methods=["POST"],
            tags=[name],
            name=f"{name}.{entry.name}",
            summary=f"Run {name}/{entry.name}",
            description=entry_description(entry),
            openapi_extra=entry_operation(entry),
            response_class=Response,
        )


def _describe(name: str, bundle: Bundle, entries: dict[str, Entry]) -> dict[str, Any]:
    m = bundle.manifest
    spec = m.get("spec") if isinstance(m.get("spec"), dict) else {}
    return {
        "name": name,
        "path": f"/v1/{name}",
        "format_version": m.get("format_version"),
        "latentspec_version": m.get("latentspec_version"),
        "spec_sha256": spec.get("sha256"),
        "entries": {e.name: e.about() for e in entries.values()},
        "latents": m.get("latents") or {},
        "directions": m.get("directions") or {},
        "metrics": m.get("metrics") or {},
        "claims": m.get("claims"),
        "providers": bundle.providers,
    }


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestError(413, "too_large", f"the body has {int(length)} bytes; this server takes at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(
                413, "too_large", f"the body has more than {limit} bytes; this server takes at most {limit}"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(state: _State, entry: Entry) -> Callable[[Request], Awaitable[Response]]:
    batcher = state.batchers[(entry.bundle, entry.name)]
    config = state.config

    async def run_entry(request: Request) -> Response:
        batcher.admit()
        submitted = False
        try:
            answer = choose_type(request.headers.get("accept"))
            query = dict(request.query_params)
            body = await _read_body(request, config.max_body)
            given, options = await _parse(request, body, entry, query)
            try:
                prepared = prepare(
                    entry, given, seed=options["seed"] or 0, n=options["n"], iterations=options["iterations"]
                )
            except ValueError as err:  # InputError, or shapes numpy cannot broadcast
                raise _input_error(err) from None
            if prepared.rows > config.max_items:
                raise RequestError(
                    413,
                    "too_large",
                    f"the request has {prepared.rows} items; this server takes at most {config.max_items}",
                )
            submitted = True
            result = await batcher.submit(prepared)
            if isinstance(result, InputError):
                raise _input_error(result)
            if isinstance(result, BundleError):
                raise RequestError(500, "runtime", str(result))
            if isinstance(result, Exception):
                LOG.error("entry %s/%s failed", entry.bundle, entry.name, exc_info=result)
                raise RequestError(500, "runtime", f"entry {entry.name!r} failed: {type(result).__name__}: {result}")
            return _answer(entry, result, answer, query)
        except RequestError as err:
            request.state.error_kind = err.kind
            return JSONResponse(err.body(), status_code=err.status)
        finally:
            if not submitted:
                batcher.withdraw()

    return run_entry


def _input_error(err: Exception) -> RequestError:
    found = _INPUT_NAME.search(str(err))
    return RequestError(422, "invalid_input", str(err), found.group(1) if found else None)


async def _parse(
    request: Request, body: bytes, entry: Entry, query: dict[str, str]
) -> tuple[dict[str, np.ndarray], dict[str, int | None]]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not body.strip():  # no inputs: options only (e.g. ?n=16&seed=3 for samples)
        return {}, parse_options(query)
    if ctype == JSON or (not ctype and body[:1] == b"{"):
        given, doc = parse_json(body, entry)
        return given, parse_options(query, doc)
    if ctype == "multipart/form-data":
        given, fields = await parse_multipart(body, request.headers, entry)
        return given, parse_options({**query, **fields})
    if ctype in (NPY, "application/octet-stream"):
        t = single_input(entry, query.get("input"))
        return {t.name: from_npy(body, t.name)}, parse_options(query)
    if ctype.startswith("image/"):
        t = single_input(entry, query.get("input"))
        return {t.name: from_image(body, t)}, parse_options(query)
    raise RequestError(
        415,
        "unsupported_media_type",
        f"Content-Type {ctype or '(none)'} is not supported; send {JSON}, {NPY}, {PNG} or multipart/form-data",
    )


def _answer(entry: Entry, out: dict[str, np.ndarray], answer: str, query: dict[str, str]) -> Response:
    if answer == JSON:
        return Response(json_body(out), media_type=JSON)
    name = pick_output(entry, out, query.get("output"), want_image=answer == PNG)
    if answer == NPY:
        return Response(npy_body(out[name]), media_type=NPY)
    rows = query.get("rows")
    if rows is not None and (not rows.isdigit() or int(rows) < 1):
        raise RequestError(400, "bad_request", f"rows must be an integer >= 1, got {rows!r}")
    return Response(png_body(entry, name, out[name], int(rows) if rows else None), media_type=PNG)


class _Guard:
    """ASGI middleware: the bearer token, and the request metrics of every route."""

    OPEN = ("/healthz", "/readyz")

    def __init__(self, app: ASGIApp, state: _State) -> None:
        self.app = app
        self.state = state
        token = state.config.token
        self.expected = f"Bearer {token}".encode() if token else None

    def _labels(self, path: str) -> tuple[str, str]:
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "v1" and parts[2] in self.state.entries.get(parts[1], {}):
            return parts[1], parts[2]
        if len(parts) == 2 and parts[0] == "v1" and parts[1] in self.state.entries:
            return parts[1], ""
        known = {"": "page", "healthz": "healthz", "readyz": "readyz", "metrics": "metrics", "v1": "index"}
        return "", known.get(parts[0], "static" if parts[0] == "static" else "other")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        bundle, entry = self._labels(path)
        m = self.state.metrics
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        m.in_progress.inc()
        try:
            if self.expected is not None and not self._open(path) and not self._authorized(scope):
                await _unauthorized(send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            m.in_progress.dec()
            m.requests.labels(bundle, entry, str(status)).inc()
            if entry not in ("metrics", "static", "page", "healthz", "readyz"):
                m.latency.labels(bundle, entry).observe(time.perf_counter() - start)
            if status >= 400:
                kind = scope.get("state", {}).get("error_kind") or KIND_BY_STATUS.get(status, str(status))
                m.errors.labels(bundle, entry, kind).inc()

    def _open(self, path: str) -> bool:
        # The explorer's HTML, CSS and JS are the package's public files; the data they show
        # comes from the guarded API, with the token the page asks for.
        return path in self.OPEN or path == "/" or path.startswith("/static/")

    def _authorized(self, scope: Scope) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization":
                return hmac.compare_digest(value, self.expected or b"")
        return False


async def _unauthorized(send: Send) -> None:
    body = b'{"error":"missing or wrong bearer token: send Authorization: Bearer <token>","kind":"unauthorized"}'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="latentspec"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def wait_ready(app: FastAPI, timeout: float) -> bool:
    """Block until the app's sessions are warm (for embedding; servers use GET /readyz)."""
    return app.state.serve.ready.wait(timeout)
