"""`data.split.held_out`: rows whose value of a dataset array lies in given intervals are kept out
of training and form the test split (views never seen in training, specs/chairs_shapes.yaml)."""

from __future__ import annotations

import numpy as np
import pytest

from latentspec.data.pipeline import load_arrays, split_rows
from latentspec.errors import DataError
from latentspec.spec import load_spec

BANDS = [[0.5, 1.0], [3.0, 3.5]]


def spec_of(tmp_path, split: str, sampler: str = "shuffle"):
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"""latentspec: 1
name: held
data:
  dataset: {{shapes: {{size: 300, cache: false}}}}
  split: {split}
  fields:
    x: {{from: image}}
  sampler: {sampler}
nodes:
  dec: {{module: mlp, in: x, out: x_hat, hidden: [8], shape: [1, 32, 32]}}
objective:
  rec: {{term: mse, in: [x_hat, x]}}
"""
    )
    return load_spec(str(path))


def inside(r: np.ndarray) -> np.ndarray:
    return np.any([(r >= lo) & (r <= hi) for lo, hi in BANDS], axis=0)


def test_test_rows_are_inside_the_bands_and_train_rows_outside(tmp_path):
    spec = spec_of(tmp_path, f"{{train: 150, test: 40, val: 10, held_out: {{rotation: {BANDS}}}}}")
    rows = split_rows(spec)
    r = load_arrays(spec)["rotation"]
    assert {k: len(v) for k, v in rows.items()} == {"train": 150, "test": 40, "val": 10}
    assert inside(r[rows["test"]]).all()
    assert not inside(r[rows["train"]]).any() and not inside(r[rows["val"]]).any()
    assert not set(rows["train"]) & set(rows["val"])
    again = split_rows(spec_of(tmp_path, f"{{train: 150, test: 40, val: 10, held_out: {{rotation: {BANDS}}}}}"))
    assert all(np.array_equal(rows[k], again[k]) for k in rows)
    plain = split_rows(spec_of(tmp_path, "{train: 150, test: 40}"))
    assert not inside(r[plain["test"]]).all()  # without held_out, test rows come from everywhere


def test_asking_more_rows_than_a_side_has_says_so(tmp_path):
    spec = spec_of(tmp_path, f"{{train: 100, test: 200, held_out: {{rotation: {BANDS}}}}}")
    with pytest.raises(DataError, match=r"data.split: test asks for 200 rows inside held_out but only \d+ are left"):
        split_rows(spec)


def test_an_unknown_array_and_a_reversed_interval_are_data_errors(tmp_path):
    with pytest.raises(DataError, match=r"data\.split\.held_out: the dataset has no per-row value 'view'"):
        split_rows(spec_of(tmp_path, "{train: 100, test: 20, held_out: {view: [[0, 1]]}}"))
    with pytest.raises(DataError, match=r"held_out.rotation: interval \[2, 1\] has lo > hi"):
        split_rows(spec_of(tmp_path, "{train: 100, test: 20, held_out: {rotation: [[2, 1]]}}"))


def test_fixed_factor_blocks_cannot_be_held_out(tmp_path):
    spec = spec_of(
        tmp_path,
        "{train: 100, test: 20, held_out: {rotation: [[0, 1]]}}",
        "{fixed_factors: {vary: [rotation], batch: 10}}",
    )
    with pytest.raises(DataError, match="fixed_factors sampler keeps whole blocks"):
        split_rows(spec)


def test_a_malformed_interval_is_a_located_schema_error(tmp_path):
    from latentspec.spec import validate_file

    path = tmp_path / "bad.yaml"
    spec_of(tmp_path, "{train: 100}")  # writes a valid spec.yaml to start from
    text = (
        (tmp_path / "spec.yaml")
        .read_text()
        .replace("split: {train: 100}", "split: {train: 100, held_out: {rotation: [[0, 1, 2]]}}")
    )
    path.write_text(text)
    _, diags = validate_file(str(path))
    errors = [d for d in diags if d.severity == "error"]
    assert errors and all("held_out" in d.path and d.line > 0 for d in errors), errors
