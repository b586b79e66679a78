"""The high-level methods: single items, seeds, interpolation, edits, refinement, swap."""

from __future__ import annotations

from pathlib import Path

import _bundles
import numpy as np
import pytest

from latentspec_runtime import Bundle, BundleError, InputError


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(7).random((3, 1, 4, 4)).astype(np.float32)


def test_missing_entry_names_the_ones_there(tmp_path: Path) -> None:
    bundle = Bundle.load(_bundles.make_bundle(tmp_path / "b", only=("decode", "sample")))
    with pytest.raises(BundleError) as err:
        bundle.encode(np.zeros((1, 4, 4), np.float32))
    assert str(err.value) == "this bundle has no 'encode' entry point; it has: decode, sample"


def test_decode_single_item_and_batch(bundle: Bundle, weights: _bundles.Weights) -> None:
    z = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    batch = bundle.decode(z)
    assert isinstance(batch, np.ndarray) and batch.shape == (3, 1, 4, 4)
    np.testing.assert_allclose(batch, _bundles.decode_ref(weights, z), atol=1e-6)
    single = bundle.decode(z[1])
    assert single.shape == (1, 4, 4)
    np.testing.assert_allclose(single, batch[1], atol=1e-7)


def test_encode_and_code(bundle: Bundle, weights: _bundles.Weights, images: np.ndarray) -> None:
    out = bundle.encode(images)
    assert set(out) == {"z_mu", "z_logvar"}
    np.testing.assert_allclose(bundle.code(images), _bundles.code_ref(weights, images), atol=1e-5)
    assert bundle.code(images[0]).shape == (4,)
    assert bundle.encode(images[0])["z_logvar"].shape == (4,)


def test_sample_is_deterministic_and_draws_from_the_seed(bundle: Bundle) -> None:
    a = bundle.sample(5, seed=3)
    assert a.shape == (5, 1, 4, 4)
    np.testing.assert_array_equal(a, bundle.sample(5, seed=3))
    assert not np.allclose(a, bundle.sample(5, seed=4))
    eps = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(a, bundle.decode(eps))
    with pytest.raises(InputError, match="n must be an integer >= 1, got 0"):
        bundle.sample(0)


def test_sample_needing_other_inputs_says_how(tmp_path: Path, weights: _bundles.Weights) -> None:
    entries = _bundles.standard_entries(weights)
    bundle = Bundle.load(_bundles.write_bundle(tmp_path / "b", {"sample": entries["generate"]}))
    with pytest.raises(InputError, match=r"also needs input 'y' .*y=\.\.\..*bundle\.run\('sample'"):
        bundle.sample(2)
    # Given by name, an unbatched label serves all n samples.
    out = bundle.sample(2, seed=1, y=1)
    eps = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(out, _bundles.decode_ref(weights, weights.embed[1] + eps), atol=1e-6)


def test_generate_draws_missing_noise(bundle: Bundle, weights: _bundles.Weights) -> None:
    out = bundle.generate(y=np.array([0, 2]), seed=5)
    eps = np.random.default_rng(5).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(out, _bundles.decode_ref(weights, weights.embed[[0, 2]] + eps), atol=1e-6)
    assert bundle.generate(y=1).shape == (1, 4, 4)  # one item


def test_reconstruct_falls_back_to_decode_of_code(bundle: Bundle, images: np.ndarray) -> None:
    np.testing.assert_allclose(bundle.reconstruct(images), bundle.decode(bundle.code(images)), atol=1e-7)
    assert bundle.reconstruct(images[0]).shape == (1, 4, 4)


@pytest.mark.parametrize("method", ["lerp", "slerp"])
def test_interpolate_endpoints_and_shapes(bundle: Bundle, images: np.ndarray, method: str) -> None:
    a, b = images[0], images[1]
    path = bundle.interpolate(a, b, steps=5, method=method)
    assert path.shape == (5, 1, 4, 4)
    np.testing.assert_allclose(path[0], bundle.decode(bundle.code(a)), atol=1e-6)
    np.testing.assert_allclose(path[-1], bundle.decode(bundle.code(b)), atol=1e-6)
    batch = bundle.interpolate(images[:2], images[1:], steps=4, method=method)
    assert batch.shape == (2, 4, 1, 4, 4)
    np.testing.assert_allclose(batch[:, -1], bundle.decode(bundle.code(images[1:])), atol=1e-6)


def test_interpolate_lerp_midpoint(bundle: Bundle, images: np.ndarray) -> None:
    za, zb = bundle.code(images[0]), bundle.code(images[1])
    mid = bundle.interpolate(images[0], images[1], steps=3)[1]
    np.testing.assert_allclose(mid, bundle.decode((za + zb) / 2), atol=1e-6)


def test_interpolate_slerp_keeps_the_norm_of_equal_norm_codes(bundle: Bundle) -> None:
    from latentspec_runtime._bundle import _interpolate

    a = np.array([[3.0, 0, 0, 0]], np.float32)
    b = np.array([[0, 3.0, 0, 0]], np.float32)
    path = _interpolate(a, b, 7, "slerp")  # (1, 7, 4)
    np.testing.assert_allclose(np.linalg.norm(path, axis=2), 3.0, rtol=1e-6)
    np.testing.assert_array_equal(_interpolate(a, a, 3, "slerp")[0], np.repeat(a, 3, axis=0))


def test_interpolate_errors(bundle: Bundle, images: np.ndarray) -> None:
    with pytest.raises(InputError, match="steps must be an integer >= 2"):
        bundle.interpolate(images[0], images[1], steps=1)
    with pytest.raises(InputError, match="method must be 'lerp' or 'slerp'"):
        bundle.interpolate(images[0], images[1], method="cubic")
    with pytest.raises(InputError, match="both be single items or batches of one size"):
        bundle.interpolate(images[0], images[:2])


def test_edit_by_name_and_by_vector(bundle: Bundle, images: np.ndarray) -> None:
    z = bundle.code(images)
    expected = bundle.decode(z + 2.0 * np.array([1, 0, 0, 0], np.float32))
    np.testing.assert_allclose(bundle.edit(images, "up", 2.0), expected, atol=1e-6)
    d = np.array([0, 0.5, 0, 0])
    np.testing.assert_allclose(bundle.edit(images[0], d, -1.0), bundle.decode(z[0] - d), atol=1e-6)
    with pytest.raises(InputError, match="no direction 'down' in this bundle; it has: up"):
        bundle.edit(images, "down")
    with pytest.raises(InputError, match="the direction has 3 numbers but a code has 4"):
        bundle.edit(images, np.ones(3))


def test_refine_iterations(bundle: Bundle) -> None:
    x = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    np.testing.assert_array_equal(bundle.refine(x, iterations=0), 0.5 * x)
    np.testing.assert_allclose(bundle.refine(x), _bundles.refine_ref(x, 3), atol=1e-6)  # default 3
    np.testing.assert_allclose(bundle.refine(x[0], iterations=5), _bundles.refine_ref(x[0], 5), atol=1e-6)
    with pytest.raises(InputError, match="iterations must be an integer >= 0"):
        bundle.refine(x, iterations=-1)
    with pytest.raises(InputError, match="entry 'swap' has no iterations input"):
        bundle._call("swap", {"x": np.zeros((1, 1, 4, 4), np.float32)}, iterations=1)


def test_refine_default_without_manifest_default(bundle_dir: Path) -> None:
    _bundles.edit_manifest(bundle_dir, lambda m: m["entries"]["refine"]["inputs"][1].pop("default"))
    x = np.ones((1, 16), np.float32)
    np.testing.assert_allclose(Bundle.load(bundle_dir).refine(x), _bundles.refine_ref(x, 2), atol=1e-6)


def test_swap(bundle: Bundle, images: np.ndarray) -> None:
    np.testing.assert_allclose(bundle.swap(images), 1 - images, atol=1e-7)
    assert bundle.swap(images[0]).shape == (1, 4, 4)


def test_unbatched_input_is_broadcast_over_a_batch(bundle: Bundle) -> None:
    x = np.random.default_rng(0).random((3, 16)).astype(np.float32)
    mask = np.ones(16, np.float32)  # one mask for every example
    out = bundle.inpaint(x, mask, steps=2)
    np.testing.assert_allclose(out["x_hat"], bundle.invert(x, steps=2)["x_hat"], atol=1e-6)
