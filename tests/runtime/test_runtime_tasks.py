"""The convenience methods find their entry by the manifest's `task`, not by the entry's name;
manifests written before `task` existed read the name as the task."""

from __future__ import annotations

from pathlib import Path

import _bundles
import numpy as np
import pytest

from latentspec_runtime import Bundle, BundleError

Z = np.random.default_rng(3).standard_normal((2, _bundles.D)).astype(np.float32)


def _rename(root: Path, old: str, new: str, task: str | None) -> None:
    def change(m: dict) -> None:
        entry = m["entries"].pop(old)
        if task is not None:
            entry["task"] = task
        m["entries"][new] = entry

    _bundles.edit_manifest(root, change)


def test_methods_run_the_entry_whose_task_it_is(tmp_path: Path, weights: _bundles.Weights) -> None:
    root = _bundles.make_bundle(tmp_path / "b", only=("decode", "sample"))
    _rename(root, "decode", "render", "decode")
    bundle = Bundle.load(root)
    assert bundle.entry_for("decode") == "render"
    assert "  render  (decode; graph, decode.onnx" in bundle.info()
    np.testing.assert_allclose(bundle.decode(Z), _bundles.decode_ref(weights, Z), atol=1e-6)


def test_a_name_that_is_not_a_task_does_nothing_without_one(tmp_path: Path) -> None:
    root = _bundles.make_bundle(tmp_path / "b", only=("decode", "sample"))
    _rename(root, "decode", "render", None)
    bundle = Bundle.load(root)
    assert not bundle.has_task("decode")
    with pytest.raises(BundleError, match="this bundle has no 'decode' entry point; it has: sample, render"):
        bundle.decode(Z)
    assert bundle.run("render", z=Z)  # still runs by name


def test_old_manifests_read_the_name_as_the_task(bundle: Bundle) -> None:
    assert "task" not in bundle.manifest["entries"]["decode"]
    assert bundle.entry_for("decode") == "decode" and bundle.entry_for("sample") == "sample"


def test_the_entry_named_after_the_task_wins_and_others_are_ambiguous(tmp_path: Path) -> None:
    root = _bundles.make_bundle(tmp_path / "b", only=("decode", "sample"))

    def add_twin(m: dict) -> None:
        m["entries"]["decode"]["task"] = "decode"
        m["entries"]["render"] = {**m["entries"]["decode"]}

    _bundles.edit_manifest(root, add_twin)
    assert Bundle.load(root).entry_for("decode") == "decode"

    _bundles.edit_manifest(root, lambda m: m["entries"].pop("decode"))
    _bundles.edit_manifest(root, lambda m: m["entries"].update(paint=m["entries"]["render"]))
    with pytest.raises(BundleError, match=r"entries render, paint all do 'decode'; run one by name"):
        Bundle.load(root).decode(Z)


def test_an_unknown_task_is_kept_and_runs_by_name(tmp_path: Path) -> None:
    root = _bundles.make_bundle(tmp_path / "b", only=("decode", "sample"))
    _bundles.edit_manifest(root, lambda m: m["entries"]["decode"].update(task="paint"))
    bundle = Bundle.load(root)
    assert bundle.has_task("paint") and not bundle.has_task("decode")
    assert bundle.run("decode", z=Z)
