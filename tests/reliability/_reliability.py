"""Shared helpers of the reliability tests (imported by name: `conftest` is ambiguous across folders)."""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VAE = os.path.join(ROOT, "specs", "vae_mnist.yaml")
TINY = ["data.split.train=160", "data.split.test=64", "data.batch=32", "train.samples_every=0", "train.epochs=1"]


def sets(overrides) -> list[str]:
    return [arg for s in overrides for arg in ("--set", s)]


def train_args(out: str, *extra: str) -> list[str]:
    return ["train", VAE, "--out", out, "--quiet", "--device", "cpu", *sets([*TINY, *extra])]


def no_internal_error(err: str) -> None:
    """None of the known classes of bad input reaches the CLIs' last-resort handler."""
    assert "internal error" not in err and "Traceback" not in err, err
