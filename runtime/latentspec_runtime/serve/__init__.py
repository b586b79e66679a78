"""Serve bundles over HTTP (the ``serve`` extra: FastAPI, uvicorn, prometheus-client).

``latentspec-runtime serve BUNDLE...`` runs :func:`create_app` under uvicorn: one endpoint per
entry point, ``POST /v1/{bundle}/{entry}``, with dynamic micro-batching, health, Prometheus
metrics and the latent explorer page at ``/``.

>>> from latentspec_runtime import Bundle
>>> from latentspec_runtime.serve import create_app
>>> app = create_app([Bundle.load("vae_mnist.bundle")])  # doctest: +SKIP
"""

from ._app import ServeConfig, create_app, wait_ready

__all__ = ["ServeConfig", "create_app", "wait_ready"]
