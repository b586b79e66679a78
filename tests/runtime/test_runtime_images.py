"""Files: images in [0, 1] as (C, H, W), batches from folders, grids, 0-255 mapping."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentspec_runtime import InputError
from latentspec_runtime._images import grid, read_image, read_inputs, to_uint8, write_image


def test_grid_layouts() -> None:
    images = np.ones((5, 1, 4, 4), np.float32)
    assert grid(images).shape == (1, 2 * 6 - 2, 3 * 6 - 2)  # 5 items: 2 rows of 3
    assert grid(images, rows=1).shape == (1, 4, 5 * 6 - 2)
    assert grid(np.ones((2, 3, 3, 4, 4))).shape == (3, 2 * 6 - 2, 3 * 6 - 2)  # (R, S, C, H, W)
    assert grid(images[:1]).shape == (1, 4, 4)
    assert grid(np.ones((4, 4))).shape == (1, 4, 4)


def test_to_uint8_maps_the_range() -> None:
    a = np.array([-1.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(to_uint8(a, (-1.0, 1.0)), [0, 128, 255, 255])
    np.testing.assert_array_equal(to_uint8(a, None), [0, 85, 170, 255])
    np.testing.assert_array_equal(to_uint8(np.zeros(2), None), [0, 0])


def test_png_round_trip_and_channels(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).random((3, 5, 6)).astype(np.float32)
    write_image(tmp_path / "a.png", rgb, (0.0, 1.0))
    back = read_image(tmp_path / "a.png")
    assert back.shape == (3, 5, 6) and back.dtype == np.float32
    np.testing.assert_allclose(back, rgb, atol=0.5 / 255 + 1e-6)
    gray = read_image(tmp_path / "a.png", channels=1)
    assert gray.shape == (1, 5, 6)
    assert read_image(tmp_path / "a.png", channels=4).shape == (4, 5, 6)
    with pytest.raises(InputError, match="takes 2 channels"):
        read_image(tmp_path / "a.png", channels=2)


def test_folder_is_a_batch_and_images_fit_the_item(tmp_path: Path) -> None:
    for i in range(3):
        Image.fromarray(np.full((4, 4), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    batch = read_inputs([tmp_path], item=(1, 4, 4))
    assert batch.shape == (3, 1, 4, 4)
    np.testing.assert_allclose(batch[:, 0, 0, 0], [0, 60 / 255, 120 / 255], atol=1e-7)
    assert read_inputs([tmp_path / "1.png"], item=(16,)).shape == (16,)  # flattened
    assert read_inputs([tmp_path / "1.png", tmp_path / "2.png"], item=(16,)).shape == (2, 16)
    mapped = read_inputs([tmp_path / "2.png"], item=(1, 4, 4), value_range=(-1.0, 1.0))
    np.testing.assert_allclose(mapped, 2 * 120 / 255 - 1, atol=1e-6)


def test_npy_files_stack_or_concatenate(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", np.zeros(4, np.float32))
    np.save(tmp_path / "two.npy", np.ones((2, 4), np.float32))
    assert read_inputs([tmp_path / "one.npy", tmp_path / "two.npy"], item=(4,)).shape == (3, 4)
    np.save(tmp_path / "odd.npy", np.ones(5, np.float32))
    with pytest.raises(InputError, match="a batch needs items of one shape"):
        read_inputs([tmp_path / "one.npy", tmp_path / "odd.npy"], item=(4,))


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        read_inputs([tmp_path / "nope.png"])
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError, match=r"unknown file type \.txt"):
        read_inputs([tmp_path / "x.txt"])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read it as an image"):
        read_inputs([tmp_path / "broken.png"])
    with pytest.raises(InputError, match="is not an image"):
        write_image(tmp_path / "z.png", np.zeros((4, 20)).reshape(4, 20, 1, 1))


def test_missing_pillow_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install 'latentspec-runtime\[images\]'"):
        read_image(tmp_path / "a.png")
