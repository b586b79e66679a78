"""``Bundle.run``: the strict generic call and its input checks (names, dtype, shape, range)."""

from __future__ import annotations

import _bundles
import numpy as np
import pytest

from latentspec_runtime import Bundle, BundleError, InputError


def test_run_matches_numpy(bundle: Bundle, weights: _bundles.Weights) -> None:
    z = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    out = bundle.run("decode", {"z": z})
    assert list(out) == ["x_mean"]
    assert out["x_mean"].dtype == np.float32
    np.testing.assert_allclose(out["x_mean"], _bundles.decode_ref(weights, z), atol=1e-6)
    np.testing.assert_array_equal(bundle.run("decode", z=z)["x_mean"], out["x_mean"])


def test_encode_has_two_outputs(bundle: Bundle, weights: _bundles.Weights) -> None:
    x = np.random.default_rng(0).random((2, 1, 4, 4)).astype(np.float32)
    out = bundle.run("encode", x=x)
    assert list(out) == ["z_mu", "z_logvar"]
    np.testing.assert_allclose(out["z_mu"], _bundles.code_ref(weights, x), atol=1e-5)


def test_float64_and_int_inputs_are_converted(bundle: Bundle) -> None:
    z = np.random.default_rng(0).standard_normal((2, 4))
    expected = bundle.run("decode", z=z.astype(np.float32))["x_mean"]
    np.testing.assert_array_equal(bundle.run("decode", z=z)["x_mean"], expected)
    ints = np.array([[1, 0, -1, 2]])
    np.testing.assert_array_equal(
        bundle.run("decode", z=ints)["x_mean"], bundle.run("decode", z=ints.astype(np.float32))["x_mean"]
    )
    assert bundle.run("decode", z=[[0.0, 0.0, 0.0, 0.0]])["x_mean"].shape == (1, 1, 4, 4)


def test_float_for_int64_is_refused(bundle: Bundle) -> None:
    eps = np.zeros((2, 4), np.float32)
    with pytest.raises(InputError, match=r"input 'y' must be int64 \(label\), got float64; .*astype"):
        bundle.run("generate", y=np.array([0.0, 1.0]), eps=eps)


def test_wrong_shape_names_entry_input_expected_and_received(bundle: Bundle) -> None:
    with pytest.raises(InputError) as err:
        bundle.run("decode", z=np.zeros((3, 5), np.float32))
    assert str(err.value) == "entry 'decode': input 'z' has shape [3, 5], expected [batch, 4]"


def test_missing_batch_axis_is_an_error_in_run(bundle: Bundle) -> None:
    with pytest.raises(InputError, match=r"has shape \[4\], expected \[batch, 4\]; a single item\?"):
        bundle.run("decode", z=np.zeros(4, np.float32))


def test_zero_d_input_shape(bundle: Bundle) -> None:
    x = np.zeros((1, 16), np.float32)
    with pytest.raises(InputError, match=r"input 'iterations' has shape \[1\], expected \[\]"):
        bundle.run("refine", x=x, iterations=np.array([2]))
    np.testing.assert_allclose(bundle.run("refine", x=x + 1, iterations=2)["p"], _bundles.refine_ref(x + 1, 2))


def test_inputs_go_by_name(bundle: Bundle) -> None:
    with pytest.raises(InputError, match=r"inputs go by name.*run\('generate', \{'y': \.\.\., 'eps': \.\.\.\}\)"):
        bundle.run("generate", np.zeros((1, 4), np.float32))


def test_missing_and_unknown_inputs(bundle: Bundle) -> None:
    with pytest.raises(InputError, match=r"entry 'generate': missing input 'eps' .*; it takes: y, eps"):
        bundle.run("generate", y=np.array([0]))
    with pytest.raises(InputError, match=r"unknown input 'zz' \(did you mean 'z'\?\); it takes: z"):
        bundle.run("decode", z=np.zeros((1, 4), np.float32), zz=1)
    # A misspelt name explains the missing one better than "missing".
    with pytest.raises(InputError, match=r"unknown input 'Z'"):
        bundle.run("decode", Z=np.zeros((1, 4), np.float32))


def test_batch_sizes_must_agree(bundle: Bundle) -> None:
    with pytest.raises(InputError, match=r"input 'eps' has batch size 3 but input 'y' has 2"):
        bundle.run("generate", y=np.array([0, 1]), eps=np.zeros((3, 4), np.float32))


def test_range_is_checked(bundle: Bundle) -> None:
    x = np.full((2, 1, 4, 4), 0.5, np.float32)
    x[1, 0, 2, 3] = 1.5
    x[0, 0, 0, 0] = -0.25
    with pytest.raises(InputError) as err:
        bundle.run("encode", x=x)
    assert str(err.value) == ("entry 'encode': input 'x' (image) must lie in [0, 1]; found values in [-0.25, 1.5]")
    x = np.full((1, 1, 4, 4), np.nan, np.float32)
    with pytest.raises(InputError, match="found NaN"):
        bundle.run("encode", x=x)
    with pytest.raises(InputError, match=r"input 'y' \(label\) must lie in \[0, 2\]"):
        bundle.run("generate", y=np.array([3]), eps=np.zeros((1, 4), np.float32))


def test_range_tolerance(bundle: Bundle) -> None:
    x = np.full((1, 1, 4, 4), 1.0 + 5e-7, np.float32)
    assert bundle.run("encode", x=x)["z_mu"].shape == (1, 4)


def test_run_on_optimize_entry_runs_the_loop(bundle: Bundle) -> None:
    out = bundle.run("invert", x=np.zeros((2, 16), np.float32))
    assert list(out) == ["x_hat", "z", "loss"]
    assert out["z"].shape == (2, 4) and out["loss"].shape == (2,)


def test_unknown_entry(bundle: Bundle) -> None:
    with pytest.raises(BundleError, match="this bundle has no 'warp' entry point; it has: decode, encode"):
        bundle.run("warp", {})
