"""The `hands` dataset: a depth-like articulated hand with joint angles and joint positions."""

from __future__ import annotations

import numpy as np
import pytest

from latentspec.components._kinds import DATASETS
from latentspec.data.procedural import hands

GLOBAL = ("rotation", "scale", "posx", "posy")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSPEC_CACHE", str(tmp_path / "cache"))


def load(**params):
    ds = hands.Hands()
    return ds.load(ds.resolve({"size": 64, "cache": False, **params}))


def test_arrays_describe_load():
    ds = DATASETS["hands"]()
    cfg = ds.resolve({"size": 12, "cache": False})
    infos, data = ds.arrays(cfg), ds.load(cfg)
    assert set(infos) == set(data) == {"image", "joints", "joints_flat", "angles", *GLOBAL}
    for name, info in infos.items():
        assert data[name].shape == (12, *info.shape) and data[name].dtype == np.dtype(info.dtype), name
    assert infos["image"].shape == (1, 64, 64)
    assert infos["joints"].shape == (21, 2) and infos["joints"].names == hands.JOINT_NAMES
    assert infos["joints_flat"].shape == (42,) and infos["angles"].shape == (19,)
    assert infos["angles"].names == hands.ANGLE_NAMES


def test_same_seed_same_bytes_other_seed_differs():
    a, b, c = load(seed=1), load(seed=1), load(seed=2)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert not np.array_equal(a["joints"], c["joints"])


def test_render_reproduces_items_exactly():
    d = load(size=30)
    for i in (0, 11, 29):
        item = hands.render(angles=d["angles"][i], **{k: d[k][i] for k in GLOBAL})
        assert set(item) == set(d)
        for k in d:
            assert item[k].tobytes() == d[k][i].tobytes(), k
    named = {name: d["angles"][7, j] for j, name in enumerate(hands.ANGLE_NAMES)}
    item = hands.Hands.render(**named, **{k: d[k][7] for k in GLOBAL})
    assert item["image"].tobytes() == d["image"][7].tobytes()


def test_joints_land_on_the_drawn_hand():
    d = load(size=300)
    img, joints = d["image"][:, 0], d["joints"]
    x, y = np.floor(joints[..., 0]).astype(int), np.floor(joints[..., 1]).astype(int)
    inside = (x >= 0) & (x < 64) & (y >= 0) & (y < 64)
    assert inside.mean() > 0.99
    n = np.broadcast_to(np.arange(len(img))[:, None], x.shape)
    values = img[n[inside], y[inside], x[inside]]
    assert values.min() > 0.2, "every joint inside the image lies on a lit hand pixel"


def test_joints_flat_is_joints_scaled_to_minus_one_one():
    d = load(size=20)
    np.testing.assert_allclose(d["joints_flat"], (d["joints"] / 64 * 2 - 1).reshape(20, 42), atol=1e-6)
    assert np.abs(d["joints_flat"]).max() <= 1.0


def test_depth_like_image():
    d = load(size=50)
    img = d["image"][:, 0]
    assert img.min() == 0.0 and img.max() <= 1.0
    assert np.all(img[:, 0, 0] == 0) and np.all(img[:, 0, -1] == 0)  # background is 0
    # Flexing a finger brings it nearer (brighter) and foreshortens it.
    straight = hands.render()
    bent = hands.render(index_mcp=1.0, index_pip=1.2)
    tip = hands.JOINT_NAMES.index("index_tip")
    mcp = hands.JOINT_NAMES.index("index_mcp")

    def at(item, j):
        x, y = np.floor(item["joints"][j]).astype(int)
        return item["image"][0, y, x]

    assert at(bent, tip) > at(straight, tip) + 0.2
    length = [np.linalg.norm(h["joints"][tip] - h["joints"][mcp]) for h in (straight, bent)]
    assert length[1] < 0.7 * length[0]


def test_angle_ranges_and_narrowing():
    d = load(size=200, factors={"index_pip": 0.0, "rotation": [-0.1, 0.1]})
    ds = hands.Hands()
    for j, f in enumerate(ds.factors(ds.resolve({}))[: len(hands.ANGLE_NAMES)]):
        assert f.name == hands.ANGLE_NAMES[j]
        lo, hi = (0.0, 0.0) if f.name == "index_pip" else (f.lo, f.hi)
        assert lo - 1e-6 <= d["angles"][:, j].min() and d["angles"][:, j].max() <= hi + 1e-6, f.name
    assert np.abs(d["rotation"]).max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="unknown factor 'index_xyz'"):
        ds.arrays(ds.resolve({"factors": {"index_xyz": 0.1}}))


def test_load_grouped_via_shared_code():
    ds = hands.Hands()
    d = ds.load_grouped(ds.resolve({"size": 40, "cache": False}), ["index_pip", "rotation"], 5)
    assert len(d["image"]) == 40
    for b in range(8):
        block = slice(5 * b, 5 * b + 5)
        varied = ["index_pip", "rotation"][b % 2]
        for j, name in enumerate(hands.ANGLE_NAMES):
            spread = np.ptp(d["angles"][block, j])
            assert (spread > 0) == (name == varied), (b, name)
        for g in GLOBAL:
            assert (np.ptp(d[g][block]) > 0) == (g == varied), (b, g)
