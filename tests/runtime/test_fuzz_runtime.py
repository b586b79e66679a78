"""Property-based fuzzing of the runtime API: random bytes, shapes and dtypes give a clear
error (InputError / BundleError, one line naming the entry) or the correct result."""

from __future__ import annotations

from pathlib import Path

import _bundles
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentspec_runtime import Bundle
from latentspec_runtime._images import read_array
from latentspec_runtime._manifest import BundleError, InputError

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_, np.complex64]
SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Bundle, Bundle]:
    root = _bundles.make_bundle(tmp_path_factory.mktemp("fuzz") / "tiny.bundle")
    return Bundle.load(root, device="cpu"), Bundle.load(root, device="cpu", finite=True)


arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
        elements=hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True)
        if np.dtype(dtype).kind in "fc"
        else None,
    )
)


def one_line(err: Exception, entry: str) -> None:
    text = str(err)
    assert text and len(text.splitlines()) == 1, text


@SETTINGS
@given(z=arrays)
def test_decode_gives_a_clear_error_or_the_right_answer(tiny, z):
    for bundle in tiny:
        try:
            out = bundle.decode(z)
        except (InputError, BundleError) as err:
            one_line(err, "decode")
            continue
        # accepted: a (B, 4) or (4,) code of real numbers, converted to float32 without loss of meaning
        assert z.dtype.kind in "biuf" and z.shape[-1:] == (_bundles.D,) and z.ndim in (1, 2)
        zz = z.astype(np.float32).reshape(-1, _bundles.D)
        if bundle.check_finite:
            assert np.isfinite(zz).all()
        with np.errstate(all="ignore"):  # huge codes saturate the sigmoid
            want = _bundles.decode_ref(_bundles.Weights(), zz.astype(np.float64))
            np.testing.assert_allclose(out.reshape(want.shape), want, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(x=arrays)
def test_encode_gives_a_clear_error_or_the_right_answer(tiny, x):
    bundle = tiny[1]
    try:
        out = bundle.code(x)
    except (InputError, BundleError) as err:
        one_line(err, "encode")
        return
    assert x.dtype.kind in "biuf" and np.isfinite(x.astype(np.float64)).all()
    with np.errstate(all="ignore"):
        want = _bundles.code_ref(
            _bundles.Weights(), x.astype(np.float32).reshape(-1, *_bundles.IMAGE).astype(np.float64)
        )
    np.testing.assert_allclose(out.reshape(want.shape), want, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(name=st.text(max_size=8), value=st.one_of(st.none(), st.text(max_size=4), st.integers(), st.floats()))
def test_unknown_inputs_and_non_arrays_are_clear_errors(tiny, name, value):
    bundle = tiny[0]
    with pytest.raises((InputError, BundleError)) as info:
        bundle.run("decode", {name: value} if name != "z" else {"z": value, "extra": 1})
    one_line(info.value, "decode")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(raw=st.binary(max_size=300), prefix=st.sampled_from([b"", b"\x93NUMPY\x01\x00", b"PK\x03\x04"]))
def test_random_bytes_as_npy_are_clear_errors(tmp_path_factory, raw, prefix):
    path = Path(tmp_path_factory.mktemp("npy")) / "x.npy"
    path.write_bytes(prefix + raw)
    try:
        a = read_array(path)
    except InputError as err:
        assert str(path) in str(err) and "allow_pickle" not in str(err)
        return
    assert isinstance(a, np.ndarray) and a.dtype.kind in "biuf"
