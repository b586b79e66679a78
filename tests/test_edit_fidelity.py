"""`latentspec eval RUN --edit-fidelity DIRECTION` on a tiny `faces` run: held-out faces edited
along a gaze direction against the faces rendered with the gaze changed. Its keys are declared
(the spec's claim reads them), its numbers equal a direct computation, and bad uses are
one-line errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from _tiny import tiny_spec

from latentspec.cli import main
from latentspec.data.pipeline import group_rows, load_arrays
from latentspec.data.procedural.faces import SHARED, render_batch
from latentspec.errors import RunError
from latentspec.run import load_run
from latentspec.run.directions import direction
from latentspec.spec import load_spec, validate_text
from latentspec.spec._evalkeys import eval_keys, lookup, written_paths
from latentspec.train.evaluate import evaluate_run
from latentspec.train.pictures import run_entry
from latentspec.train.trainer import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEANS = "gaze_right=gaze_x:-1..-0.5:0.5..1"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edit")
    path = tiny_spec(os.path.join(ROOT, "specs", "vae_faces.yaml"), str(folder), rows=80, epochs=1, batch=20)
    out = str(folder / "run")
    train(load_spec(path), out, quiet=True, device="cpu")
    return out


def _direct(run: str, vector: np.ndarray, alpha: float, step: float) -> dict:
    """The edit computed here from the renderer and the entry points, independently of eval."""
    spec, model = load_run(run)
    arrays = load_arrays(spec)
    _, rows = group_rows(spec, "test")["*"]
    keep = rows[arrays["gaze_x"][rows] + step <= 1.0]
    f = {n: arrays[n][keep] for n in ("identity", *(s.name for s in SHARED))}
    same = render_batch(f, image_size=64, identities=["A", "B", "C", "D"])
    truth = render_batch({**f, "gaze_x": f["gaze_x"] + step}, image_size=64, identities=["A", "B", "C", "D"])
    x = arrays["image"][keep]
    mu = run_entry(model, "encode", {"x": torch.from_numpy(x)}, len(x))[0].double().numpy()

    def dec(z):
        return run_entry(model, "decode", {"z": torch.from_numpy(z.astype(np.float32))}, len(z))[0].double().numpy()

    before, after, gt = dec(mu), dec(mu + alpha * vector), truth["image"].astype(np.float64)
    mask = np.zeros((len(x), 1, 64, 64), bool)
    for marks in (same["landmarks"], truth["landmarks"]):
        for i in range(len(x)):
            for eye in (0, 1):
                cx, cy = (round(float(v)) for v in marks[i, eye])
                mask[i, 0, max(cy - 6, 0) : cy + 7, max(cx - 6, 0) : cx + 7] = True
    mask = np.broadcast_to(mask, x.shape)
    return {
        "examples": len(keep),
        "mse_input": float(((x - gt) ** 2).mean()),
        "mse_before": float(((before - gt) ** 2).mean()),
        "mse_after": float(((after - gt) ** 2).mean()),
        "region_mse_before": float(((before - gt) ** 2)[mask].mean()),
        "region_mse_after": float(((after - gt) ** 2)[mask].mean()),
    }


def test_edit_fidelity_is_declared_and_equals_a_direct_computation(run):
    spec, model = load_run(run)
    vector = direction(spec, model, "gaze_x", "-1..-0.5", "0.5..1").astype(np.float64)
    arrays = load_arrays(spec)
    _, rows = group_rows(spec, "train")["*"]
    g = arrays["gaze_x"][rows].astype(np.float64)
    spread = g[g >= 0.5].mean() - g[g <= -0.5].mean()
    # the same direction twice as long, from the run's directions.json: half the alpha, same edit
    record = {"latent": "z", "vector": list(2 * vector), "factor": "gaze_x", "factor_per_alpha": 2 * spread}
    with open(os.path.join(run, "directions.json"), "w") as f:
        json.dump({"twice": record}, f)
    result = evaluate_run(run, edit_fidelity=[MEANS, "twice"])
    keys = eval_keys(load_spec(os.path.join(run, "spec.yaml")))
    written = [p for p in written_paths(result) if p.startswith("edit.")]
    assert written and all(lookup(keys, p) is not None for p in written)
    declared = [k for k in keys if k.path.startswith("edit.")]
    assert declared and all(any(k.matches(p) for p in written) for k in declared)

    e = result["edit"]["gaze_right"]
    assert (e["factor"], e["step"], e["source"]) == ("gaze_x", 1.0, "gaze_x:-1..-0.5:0.5..1")
    assert e["alpha"] == pytest.approx(1.0 / spread) and e["region"] == "eyes"
    want = _direct(run, vector, 1.0 / spread, 1.0)
    assert e["examples"] == want["examples"] > 0
    for k in ("mse_input", "mse_before", "mse_after", "region_mse_before", "region_mse_after"):
        assert e[k] == pytest.approx(want[k], rel=1e-5), k
    assert e["mse_after"] != e["mse_before"]  # the edit moved something
    twice = result["edit"]["twice"]
    assert twice["alpha"] == pytest.approx(e["alpha"] / 2)
    assert twice["mse_after"] == pytest.approx(e["mse_after"], rel=1e-5)

    # the spec's claim reads the number: `latentspec check` decides it, either way
    assert main(["check", run]) in (0, 1)
    small = evaluate_run(run, edit_fidelity=[MEANS], edit_step=-0.25)["edit"]["gaze_right"]
    assert small["step"] == -0.25 and small["examples"] > e["examples"]  # gaze_x - 0.25 >= -1: most faces


def test_edit_fidelity_bad_uses_are_one_line_errors(run, capsys):
    with pytest.raises(RunError, match="a code unit moves no factor of known size"):
        evaluate_run(run, edit_fidelity=["u=unit:0"])
    with pytest.raises(RunError, match=r"no direction 'nope' \(.*directions.json has"):
        evaluate_run(run, edit_fidelity=["nope"])
    with pytest.raises(RunError, match="no data field 'gaze'"):
        evaluate_run(run, edit_fidelity=["g=gaze:-1..0:0..1"])
    with pytest.raises(RunError, match=r"no test item has gaze_x \+ 3 inside its range \[-1, 1\]"):
        evaluate_run(run, edit_fidelity=[MEANS], edit_step=3.0)
    with open(os.path.join(run, "directions.json"), "w") as f:
        json.dump({"bare": {"latent": "z", "vector": [0.0] * 32}}, f)
    with pytest.raises(RunError, match=r'needs "factor" .* and "factor_per_alpha"'):
        evaluate_run(run, edit_fidelity=["bare"])
    assert main(["eval", run, "--edit-step", "1"]) == 1
    err = capsys.readouterr().err
    assert "--edit-step needs --edit-fidelity DIRECTION" in err and "Traceback" not in err


def test_an_edit_claim_on_a_dataset_that_cannot_rerender_is_a_located_error():
    with open(os.path.join(ROOT, "specs", "vae_mnist.yaml")) as f:
        text = f.read()
    text += "claims:\n  - {metric: edit.d.mse_after, lt: edit.d.mse_before}\n"
    spec, diags = validate_text(text, "vae.yaml")
    assert spec is None
    msgs = [str(d) for d in diags if d.severity == "error"]
    assert msgs and all("`eval --edit-fidelity` needs a procedural dataset" in m for m in msgs)


def test_directions_json_is_read_in_one_place(tmp_path):
    """`eval --edit-fidelity` and `export` read RUN/directions.json through one reader: none is
    {}, and a file that is not JSON or not a mapping is a located error."""
    from latentspec.run.directions import read_directions

    assert read_directions(str(tmp_path)) == {}
    path = tmp_path / "directions.json"
    path.write_text('{"a": {"vector": [1.0]}}')
    assert read_directions(str(tmp_path)) == {"a": {"vector": [1.0]}}
    path.write_text("[1, 2]")
    with pytest.raises(RunError, match=r"directions.json: expected a mapping"):
        read_directions(str(tmp_path))
    path.write_text("{not json")
    with pytest.raises(RunError, match=r"directions.json: cannot read it"):
        read_directions(str(tmp_path))
