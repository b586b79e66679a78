"""The `faces` dataset: identities with shared pose, expression, gaze and light factors."""

from __future__ import annotations

import numpy as np
import pytest

from latentspec.components._kinds import DATASETS
from latentspec.data.procedural import faces

SHARED = ("yaw", "roll", "mouth", "eyes", "gaze_x", "gaze_y", "light")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSPEC_CACHE", str(tmp_path / "cache"))


def load(**params):
    ds = faces.Faces()
    return ds.load(ds.resolve({"size": 32, "cache": False, **params}))


def test_arrays_describe_load():
    ds = DATASETS["faces"]()
    cfg = ds.resolve({"size": 6, "cache": False})
    infos, data = ds.arrays(cfg), ds.load(cfg)
    assert set(infos) == set(data) == {"image", "mask", "landmarks", "identity", *SHARED}
    for name, info in infos.items():
        assert data[name].shape == (6, *info.shape) and data[name].dtype == np.dtype(info.dtype), name
    assert infos["image"].shape == (3, 64, 64) and infos["identity"].names == ("A", "B")
    assert 0.0 <= data["image"].min() and data["image"].max() <= 1.0


def test_same_seed_same_bytes_other_seed_differs():
    a, b, c = load(seed=5), load(seed=5), load(seed=6)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert not np.array_equal(a["image"], c["image"])


def test_render_reproduces_items_exactly():
    d = load(size=20, identities=["A", "B", "C"])
    assert set(np.unique(d["identity"])) == {0, 1, 2}
    for i in (0, 9, 19):
        item = faces.render(**{k: d[k][i] for k in ("identity", *SHARED)}, identities=["A", "B", "C"])
        assert all(item[k].tobytes() == d[k][i].tobytes() for k in d)
    item = faces.Faces.render(identity="C", **{k: d[k][3].item() for k in SHARED})
    by_name = faces.render(identity=2, identities=["A", "B", "C"], **{k: d[k][3] for k in SHARED})
    assert item["image"].tobytes() == by_name["image"].tobytes()


def test_identities_look_different_and_are_stable_per_name():
    a, b = faces.render(identity="A"), faces.render(identity="B")
    assert np.abs(a["image"] - b["image"]).mean() > 0.1
    assert faces.identity("Zed") == faces.identity("Zed") != faces.identity("Zoe")
    with pytest.raises(ValueError, match="identity name 'a b'"):
        load(identities=["a b"])
    with pytest.raises(ValueError, match="distinct"):
        load(identities=["A", "A"])


def test_paired_swap_ground_truth_shares_pose_not_pixels():
    d = load(size=24, paired=True)
    assert {"image_A", "image_B", "mask_A", "mask_B", "landmarks"} <= set(d) and "identity" not in d
    a, b = d["image_A"], d["image_B"]
    assert np.all(np.abs(a - b).mean(axis=(1, 2, 3)) > 0.05)  # a different person...
    # ...in the same pose: the pupils sit at the same pixels, dark in both images.
    open_ = d["eyes"] > 0.6
    assert open_.sum() >= 3
    for i in np.nonzero(open_)[0]:
        for p in (2, 3):  # left and right pupil
            x, y = np.floor(d["landmarks"][i, p]).astype(int)
            assert a[i, :, y, x].max() < 0.25 and b[i, :, y, x].max() < 0.25
    # Head masks differ in shape but are centred alike.
    grid = np.arange(64) + 0.5
    for m in (d["mask_A"], d["mask_B"]):
        assert np.all(m.sum(axis=(1, 2, 3)) > 500)
    cx = [(m[:, 0] * grid).sum(axis=(1, 2)) / m[:, 0].sum(axis=(1, 2)) for m in (d["mask_A"], d["mask_B"])]
    assert np.abs(cx[0] - cx[1]).max() < 2.0
    # The paired images are the unpaired renders of each identity with the same factors.
    same = faces.render(identity="B", **{k: d[k][4] for k in SHARED})
    assert same["image"].tobytes() == b[4].tobytes() and same["landmarks"].tobytes() == d["landmarks"][4].tobytes()
    pair = faces.render(paired=True, **{k: d[k][4] for k in SHARED})
    assert all(pair[k].tobytes() == d[k][4].tobytes() for k in d)


def test_factors_do_what_they_say():
    left, right = faces.render(gaze_x=-1.0), faces.render(gaze_x=1.0)
    assert np.all(right["landmarks"][2:4, 0] > left["landmarks"][2:4, 0] + 2)
    smile, frown = faces.render(mouth=1.0), faces.render(mouth=-1.0)
    # Smiling lifts the mouth corners above the mouth's centre (y grows downwards).
    assert smile["landmarks"][5, 1] < smile["landmarks"][7, 1] and frown["landmarks"][5, 1] > frown["landmarks"][7, 1]
    lit_left, lit_right = faces.render(light=-1.0)["image"], faces.render(light=1.0)["image"]
    assert lit_left[:, 30:40, 20:28].mean() > lit_right[:, 30:40, 20:28].mean()
    rolled = faces.render(roll=0.3)["landmarks"]
    assert rolled[1, 1] > rolled[0, 1] + 2  # a clockwise tilt lowers the right eye


def test_ranges_and_unknown_factors():
    d = load(size=100, factors={"yaw": 0.0, "eyes": [0.5, 0.6], "identity": "B"})
    assert np.all(d["yaw"] == 0) and np.all(d["identity"] == 1)
    assert d["eyes"].min() >= 0.5 - 1e-6 and d["eyes"].max() <= 0.6 + 1e-6
    ds = faces.Faces()
    with pytest.raises(ValueError, match="unknown factor 'smile'; the factors are: identity, yaw"):
        ds.arrays(ds.resolve({"factors": {"smile": 1}}))
    with pytest.raises(ValueError, match="unknown factor 'identity'"):  # paired: no identity factor
        ds.arrays(ds.resolve({"paired": True, "factors": {"identity": "A"}}))


def test_load_grouped_works_for_faces():
    ds = faces.Faces()
    d = ds.load_grouped(ds.resolve({"size": 12, "cache": False}), ["gaze_x"], 4)
    for b in range(3):
        block = slice(4 * b, 4 * b + 4)
        assert len(np.unique(d["gaze_x"][block])) == 4
        assert all(
            len(np.unique(d[k][block])) == 1 for k in ("identity", "yaw", "roll", "mouth", "eyes", "gaze_y", "light")
        )
