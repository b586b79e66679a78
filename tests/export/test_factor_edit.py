"""Latent groups and factors travel into the bundle (issue 12, item 3): a tiny VAE with groups
named after `shapes` factors is trained, exported, and edited by factor name through the
runtime's API and CLI. The checks are exact in code space: the export's linear fit of each factor
on its group's units is recomputed here from the bundle's own codes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

SPEC = """\
latentspec: 1
name: groups_vae
seed: 0
data:
  dataset: {shapes: {size: 400, image_size: 16, cache: false}}
  split: {train: 300, test: 100}
  fields: {x: {from: image}}
  batch: 50
latents:
  z: {dim: 4, prior: normal, groups: {posx: [0], scale: [1, 2], style: [3]}}   # style: no such factor
nodes:
  enc: {module: mlp, in: x, out: h, hidden: [64], activation: relu}
  post: {module: gaussian_head, in: h, out: [z_mu, z_logvar], latent: z}
  draw: {op: reparameterize, in: [z_mu, z_logvar], out: z}
  dec: {module: mlp, in: z, out: x_logits, hidden: [64], activation: relu, shape: [1, 16, 16]}
  x_mean: {op: sigmoid, in: x_logits}
objective:
  rec: {term: bernoulli_nll, in: [x_logits, x]}
  kl: {term: gaussian_kl, in: [z_mu, z_logvar]}
train:
  optimizer: {name: adam, lr: 3.0e-3}
  epochs: 2
  samples_every: 0
export:
  encode: {in: [x], out: [z_mu, z_logvar]}
  decode: {in: [z], out: [x_mean]}
"""
DIRECTIONS = ["bigger=group:scale", "right=group:posx", "plain=group:style", "u3=unit:3"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(spec, run folder, bundle folder, manifest) of the trained and exported tiny VAE."""
    from latentspec.export import export_run
    from latentspec.spec import load_spec
    from latentspec.train.trainer import train

    root = tmp_path_factory.mktemp("factors")
    (root / "spec.yaml").write_text(SPEC)
    spec = load_spec(str(root / "spec.yaml"))
    train(spec, str(root / "run"), quiet=True, device="cpu")
    manifest = export_run(str(root / "run"), str(root / "b"), directions=DIRECTIONS)
    return spec, root / "run", root / "b", manifest


@pytest.fixture(scope="module")
def bundle(made):
    from latentspec_runtime import Bundle

    return Bundle.load(made[2], device="cpu")


@pytest.fixture(scope="module")
def train_rows(made):
    """The training split's images and raw `shapes` factors, in the rows' order."""
    from latentspec.data.pipeline import field_arrays, group_rows, load_arrays

    spec = made[0]
    x = field_arrays(spec, "train")["x"]
    _, rows = group_rows(spec, "train")["*"]
    arrays = load_arrays(spec)
    return x, {k: arrays[k][rows[: len(x)]].astype(np.float64) for k in ("posx", "scale")}


@pytest.mark.slow
def test_manifest_records_groups_with_their_least_squares_fit(made, bundle, train_rows):
    groups = made[3]["latents"]["z"]["groups"]
    assert groups["style"] == {"units": [3], "factor": None, "calibration": None}
    x, factors = train_rows
    z = bundle.code(x).astype(np.float64)  # the exported encoder: the codes the fit was made on
    for name, units in (("posx", [0]), ("scale", [1, 2])):
        g = groups[name]
        cal = g["calibration"]
        assert g["units"] == units and g["factor"] == name
        assert cal["source"] == "dataset" and cal["rows"] == len(x) == 300
        y = factors[name]
        assert cal["range"] == pytest.approx([y.min(), y.max()])
        # the normal equations give the same fit; R² of least squares = corr(prediction, y)²
        design = np.concatenate([z[:, units], np.ones((len(y), 1))], 1)
        coef = np.linalg.solve(design.T @ design, design.T @ y)
        assert cal["weights"] == pytest.approx(coef[:-1], rel=1e-3, abs=1e-5)
        assert cal["bias"] == pytest.approx(coef[-1], rel=1e-3, abs=1e-5)
        assert cal["r2"] == pytest.approx(np.corrcoef(design @ coef, y)[0, 1] ** 2, abs=1e-4)
    assert set(bundle.latent_groups) == {"posx", "scale", "style"}
    assert set(bundle.factors) == {"posx", "scale"}
    assert bundle.factors["scale"].calibration.r2 == groups["scale"]["calibration"]["r2"]


@pytest.mark.slow
def test_edit_by_factor_name_moves_the_factor_by_the_amount_asked(bundle, train_rows):
    x = train_rows[0][:5]
    z = bundle.code(x)
    before = bundle.factor_values(z)
    for amount in (0.2, -0.35):
        moved = bundle.edit_code(z, scale=amount)
        after = bundle.factor_values(moved)
        np.testing.assert_allclose(after["scale"] - before["scale"], amount, atol=1e-5)
        np.testing.assert_array_equal(moved[:, [0, 3]], z[:, [0, 3]])  # only the group's units move
        # decoding the moved code is what edit() returns, for a batch and for one item
        np.testing.assert_allclose(bundle.edit(x, scale=amount), bundle.decode(moved), atol=1e-6)
        np.testing.assert_allclose(bundle.edit(x[0], factors={"scale": amount}), bundle.decode(moved[0]), atol=1e-6)
    # code units: a step of length 0.5 along the fit's weights; an uncalibrated single unit moves itself
    step = bundle.edit_code(z, scale=0.5, units="code") - z
    np.testing.assert_allclose(np.linalg.norm(step, axis=1), 0.5, rtol=1e-5)
    w = bundle.factors["scale"].calibration.weights
    np.testing.assert_allclose(
        bundle.factor_values(z + step)["scale"] - before["scale"], 0.5 * np.linalg.norm(w), rtol=1e-4
    )
    np.testing.assert_allclose(bundle.edit_code(z, style=1.5, units="code") - z, [[0, 0, 0, 1.5]] * 5, atol=1e-6)
    # the stored group direction is the same edit as the group by name
    np.testing.assert_allclose(bundle.edit_code(z, "bigger", 0.2), bundle.edit_code(z, scale=0.2), atol=1e-6)
    np.testing.assert_allclose(bundle.edit_code(z, "u3", 2.0) - z, [[0, 0, 0, 2.0]] * 5, atol=1e-6)


@pytest.mark.slow
def test_edit_errors_are_one_line(bundle, train_rows):
    from latentspec_runtime import CalibrationWarning, InputError

    x = train_rows[0][:2]
    with pytest.raises(InputError) as err:
        bundle.edit(x, scal=1.0)
    assert (
        str(err.value)
        == "no latent group 'scal' in this bundle (did you mean 'scale'?); its groups: posx, scale, style"
    )
    with pytest.raises(InputError, match=r"group 'style' has no calibration .*units='code'"):
        bundle.edit(x, style=1.0)
    with pytest.raises(InputError, match="units must be 'factor' or 'code'"):
        bundle.edit(x, scale=1.0, units="pixels")
    with pytest.raises(InputError, match="give a direction or amounts by group name"):
        bundle.edit(x)
    with pytest.raises(InputError, match="the amount for 'scale' must be finite"):
        bundle.edit(x, scale=float("nan"))
    # a poor fit warns (R² < 0.5), a good one does not
    for name, g in bundle.factors.items():
        if g.calibration.r2 < 0.5:
            with pytest.warns(CalibrationWarning, match=f"group '{name}'.*R²"):
                bundle.edit(x, **{name: 0.1})
        else:
            bundle.edit(x, **{name: 0.1})  # warnings are errors in this suite


@pytest.mark.slow
def test_runtime_cli_edits_by_factor_and_lists_groups(made, bundle, train_rows, tmp_path, capsys):
    from latentspec_runtime.cli import main

    x = train_rows[0][:3]
    np.save(tmp_path / "x.npy", x)
    args = ["edit", str(made[2]), str(tmp_path / "x.npy"), "--device", "cpu", "-o", str(tmp_path / "e.npy")]
    assert main([*args, "--factor", "scale=0.25", "--factor", "style=0.5", "--units", "code"]) == 0
    expected = bundle.decode(bundle.edit_code(bundle.code(x), scale=0.25, style=0.5, units="code"))
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), expected, atol=1e-6)
    assert main([*args, "--factor", "scale=0.25", "--direction", "u3", "--alpha", "2"]) == 0
    expected = bundle.decode(bundle.edit_code(bundle.code(x), "u3", 2.0, scale=0.25))
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), expected, atol=1e-6)
    capsys.readouterr()
    assert main([*args, "--factor", "scal=1"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "latentspec-runtime: error: no latent group 'scal' in this bundle (did you mean 'scale'?); "
        "its groups: posx, scale, style\n"
    )
    assert main([*args]) == 2
    assert "give --direction NAME and/or --factor GROUP=AMOUNT (groups: posx, scale, style" in capsys.readouterr().err
    assert main(["info", str(made[2]), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    r2 = bundle.factors["scale"].calibration.r2
    assert f"  scale  units [1, 2]  factor scale (dataset), R² {r2:.3f} on 300 rows" in out
    assert "  style  units [3]  (no factor calibration: edits in code units)" in out
    assert "  bigger  (latent z, 4 numbers, group:scale, one step = +1 factor unit)" in out


@pytest.mark.slow
def test_export_directions_by_group_and_unit(made):
    from latentspec.errors import UserError
    from latentspec.export import _directions
    from latentspec.run import load_run
    from latentspec.run.directions import latent_groups

    d = made[3]["directions"]
    assert {k: (v["source"], v.get("units")) for k, v in d.items()} == {
        "bigger": ("group:scale", "factor"),
        "right": ("group:posx", "factor"),
        "plain": ("group:style", "code"),
        "u3": ("unit:3", "code"),
    }
    assert d["plain"]["vector"] == [0, 0, 0, 1] and d["u3"]["vector"] == [0, 0, 0, 1]
    w = np.asarray(made[3]["latents"]["z"]["groups"]["scale"]["calibration"]["weights"])
    np.testing.assert_allclose(d["bigger"]["vector"], [0, *(w / (w @ w)), 0], rtol=1e-6)
    spec, model = load_run(str(made[1]))
    groups = latent_groups(spec)  # without a model: units only
    assert groups["z"]["scale"] == {"units": [1, 2], "factor": None, "calibration": None}
    for asked, message in (
        ("a=group:scal", "latent 'z' has no group 'scal' (did you mean 'scale'?); it has: posx, scale, style"),
        ("a=unit:4", "latent 'z' has units 0..3"),
        ("a=unit:x", "unit:K takes a code unit index K >= 0, got 'x'"),
        ("a=scale", "expected one of NAME=FIELD:A:B (mean code"),
        ("a=group:style:x", "no data field 'group'"),
    ):
        with pytest.raises(UserError) as err:
            _directions(spec, model, str(made[1]), [asked], {"z": made[3]["latents"]["z"]["groups"]})
        assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_manifests_without_groups_still_load_and_bad_groups_are_named(made, tmp_path):
    from latentspec_runtime import Bundle, BundleError

    copy = tmp_path / "b"
    shutil.copytree(made[2], copy)
    path = copy / "manifest.json"
    raw = json.loads(path.read_text())
    old = json.loads(json.dumps(raw))
    del old["latents"]["z"]["groups"]
    for d in old["directions"].values():
        d.pop("source"), d.pop("units", None)
    path.write_text(json.dumps(old))
    b = Bundle.load(copy, device="cpu")
    assert b.latent_groups == {} and b.factors == {}
    assert b.edit(np.zeros((1, 16, 16), np.float32), "u3", 1.0).shape == (1, 16, 16)
    old["latents"]["z"]["groups"] = {"posx": [0]}  # the spec's shorthand: units only
    path.write_text(json.dumps(old))
    g = Bundle.load(copy, device="cpu").latent_groups["posx"]
    assert (g.units, g.factor, g.calibration) == ((0,), None, None)
    raw["latents"]["z"]["groups"]["scale"]["units"] = [1, 7]
    raw["latents"]["z"]["groups"]["posx"]["calibration"]["weights"] = [1.0, 2.0]
    path.write_text(json.dumps(raw))
    with pytest.raises(BundleError) as err:
        Bundle.load(copy, device="cpu")
    assert "$.latents.z.groups.scale.units: expected distinct unit indices in 0..3, got [1, 7]" in str(err.value)
    assert "$.latents.z.groups.posx.calibration.weights: expected 1 numbers" in str(err.value)


@pytest.mark.slow
def test_export_cli_directions_and_no_calibrate(made, tmp_path, capsys):
    from latentspec.cli import main

    run = str(made[1])
    assert main(["export", run, "--out", str(tmp_path / "bad"), "--direction", "a=scale"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("latentspec: error: --direction 'a=scale': expected one of")
    assert "NAME=group:GROUP" in err and "NAME=unit:K" in err and not (tmp_path / "bad").exists()
    out = tmp_path / "plain"
    assert main(["export", run, "--out", str(out), "--no-calibrate", "--direction", "s=group:style"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(g["calibration"] is None for g in manifest["latents"]["z"]["groups"].values())
    assert manifest["directions"]["s"] == {
        "latent": "z",
        "vector": [0, 0, 0, 1],
        "source": "group:style",
        "units": "code",
    }


def test_calibration_uses_a_data_field_of_the_group_name_in_its_units(tmp_path):
    """A float data field named after the group wins over the dataset's array (its `scale` is the
    user's unit); a dataset factor is used otherwise; the fit is least squares on the codes."""
    from latentspec.compiler import compile_spec
    from latentspec.data.pipeline import SplitData, group_rows, load_arrays
    from latentspec.run import codes
    from latentspec.run.directions import latent_groups
    from latentspec.spec import load_spec

    text = SPEC.replace("fields: {x: {from: image}}", "fields: {x: {from: image}, posy: {from: posy, scale: [-1, 1]}}")
    text = text.replace("groups: {posx: [0], scale: [1, 2], style: [3]}", "groups: {posy: [0, 1], posx: [2]}")
    (tmp_path / "spec.yaml").write_text(text)
    spec = load_spec(str(tmp_path / "spec.yaml"))
    model = compile_spec(spec)  # untrained: any encoder has a least-squares fit
    groups = latent_groups(spec, model)["z"]
    data = SplitData.build(spec, "train")
    z = codes(spec, model, data).double().numpy()
    _, rows = group_rows(spec, "train")["*"]
    for name, units, source, y in (
        ("posy", [0, 1], "field", data.fields["posy"].numpy().reshape(-1).astype(np.float64)),
        ("posx", [2], "dataset", load_arrays(spec)["posx"][rows].astype(np.float64)),
    ):
        cal = groups[name]["calibration"]
        assert cal["source"] == source and groups[name]["factor"] == name
        design = np.concatenate([z[:, units], np.ones((len(y), 1))], 1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        assert cal["weights"] == pytest.approx(coef[:-1]) and cal["bias"] == pytest.approx(coef[-1])
        assert cal["range"] == pytest.approx([y.min(), y.max()])
    assert -1 <= groups["posy"]["calibration"]["range"][0] < -0.9  # the field's units, not the dataset's
