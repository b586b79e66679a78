"""Serve bundles over HTTP (the ``serve`` extra: FastAPI, uvicorn, prometheus-client).

``latentspec-runtime serve BUNDLE...`` runs :func:`create_app` under uvicorn: one endpoint per
entry point, ``POST /v1/{bundle}/{entry}``, with dynamic micro-batching, health, Prometheus
metrics and the latent explorer page at ``/``.

>>> from latentspec_runtime import Bundle
>>> from latentspec_runtime.serve import create_app
>>> app = create_app([Bundle.load("vae_mnist.bundle")])  # doctest: +SKIP
"""

from typing import Any

__all__ = ["ServeConfig", "create_app", "wait_ready"]


def __getattr__(name: str) -> Any:
    # FastAPI is loaded on first use: the runtime's CLI registers `serve` from this package, and
    # every other command must work without the `serve` extra installed
    if name in __all__:
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
