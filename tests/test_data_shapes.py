"""The `shapes` dataset: sprites with class, scale, rotation, position and hue factors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import latentspec.data.procedural._common as common
from latentspec.components._kinds import DATASETS
from latentspec.data._base import DatasetSpec
from latentspec.data.procedural import shapes
from latentspec.data.show import parse_params, show

FACTORS = ("class", "scale", "rotation", "posx", "posy", "hue")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTSPEC_CACHE", str(tmp_path / "cache"))


def load(**params):
    ds = shapes.Shapes()
    return ds.load(ds.resolve({"size": 64, "cache": False, **params}))


def test_registered_with_the_contract_params():
    cls = DATASETS["shapes"]
    assert cls is shapes.Shapes and issubclass(cls, DatasetSpec) and cls.procedural
    names = [p.name for p in cls.params]
    for name in ("size", "seed", "factors", "image_size", "channels", "cache"):
        assert name in names
    assert cls.param("image_size").default == 32 and cls.param("channels").default == 1


@pytest.mark.parametrize("channels", [1, 3])
def test_arrays_describe_load(channels):
    ds = shapes.Shapes()
    cfg = ds.resolve({"size": 10, "channels": channels, "cache": False})
    infos, data = ds.arrays(cfg), ds.load(cfg)
    assert set(infos) == set(data) == {"image", "mask", *FACTORS}
    for name, info in infos.items():
        assert data[name].shape == (10, *info.shape), name
        assert data[name].dtype == np.dtype(info.dtype), name
    assert infos["image"].shape == (channels, 32, 32) and infos["mask"].shape == (1, 32, 32)
    assert infos["class"].names == shapes.CLASSES and infos["class"].classes == 4
    assert infos["rotation"].kind == "factor" and infos["rotation"].range == (0.0, 2 * np.pi)


def test_same_seed_same_bytes_other_seed_differs():
    a, b, c = load(seed=3), load(seed=3), load(seed=4)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()
    assert not np.array_equal(a["image"], c["image"])


def test_items_do_not_depend_on_size_or_chunking(monkeypatch):
    big = load(size=1100)  # spans two seeded blocks
    small = load(size=30)
    monkeypatch.setattr(common, "CHUNK", 7)
    rechunked = load(size=1100)
    for k in big:
        assert np.array_equal(big[k][:30], small[k])
        assert big[k].tobytes() == rechunked[k].tobytes()


def test_default_ranges_are_respected():
    d = load(size=500)
    ds = shapes.Shapes()
    for f in ds.factors(ds.resolve({})):
        if f.categorical:
            assert set(np.unique(d[f.name])) == set(range(len(shapes.CLASSES)))
        else:
            assert f.lo - 1e-6 <= d[f.name].min() and d[f.name].max() <= f.hi + 1e-6, f.name


def test_narrowed_fixed_and_categorical_factors():
    d = load(size=300, factors={"rotation": [0.5, 1.0], "scale": 0.7, "class": ["heart", "square"]})
    assert 0.5 - 1e-6 <= d["rotation"].min() and d["rotation"].max() <= 1.0 + 1e-6
    assert np.all(d["scale"] == np.float32(0.7))
    assert set(np.unique(d["class"])) == {shapes.CLASSES.index("heart"), shapes.CLASSES.index("square")}
    assert np.all(load(size=20, factors={"class": "ellipse"})["class"] == 1)
    # Narrowing one factor leaves the draws of the others unchanged.
    assert np.array_equal(d["posx"], load(size=300)["posx"])


@pytest.mark.parametrize(
    ("factors", "message"),
    [
        ({"colour": [0, 1]}, "unknown factor 'colour'; the factors are: class, scale"),
        ({"rotation": [0, 7]}, "factor 'rotation': range [0, 7] is not inside its domain"),
        ({"scale": [0.9, 0.6]}, "factor 'scale': range [0.9, 0.6]"),
        ({"scale": "big"}, "factor 'scale': expected a number or a range"),
        ({"class": ["star"]}, "factor 'class': unknown class 'star'; the classes are: square, ellipse"),
    ],
)
def test_bad_factors_raise_value_error_naming_the_factor(factors, message):
    ds = shapes.Shapes()
    cfg = ds.resolve({"factors": factors})
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ds.arrays(cfg)
    with pytest.raises(ValueError):
        ds.load(cfg)


@pytest.mark.parametrize("channels", [1, 3])
def test_render_reproduces_items_exactly(channels):
    d = load(size=40, channels=channels)
    for i in (0, 17, 39):
        item = shapes.render(**{k: d[k][i] for k in FACTORS}, channels=channels)
        assert set(item) == set(d)
        for k in d:
            assert item[k].shape == d[k].shape[1:] and item[k].tobytes() == d[k][i].tobytes(), k
    # Python values (as a person would type them) round through float32 the same way.
    item = shapes.Shapes.render(**{k: d[k][5].item() for k in FACTORS}, channels=channels)
    assert item["image"].tobytes() == d["image"][5].tobytes()


def test_image_is_mask_times_colour():
    d = load(size=50, channels=3)
    colour = common.hsv_to_rgb(d["hue"], shapes.SATURATION, 1.0).astype(np.float32)  # (N, 3)
    np.testing.assert_allclose(d["image"], d["mask"] * colour[:, :, None, None], atol=1e-6)
    grey = load(size=50)
    assert np.array_equal(grey["image"], grey["mask"])


def test_masks_are_soft_and_non_empty():
    m = load(size=200)["mask"]
    assert m.min() == 0.0 and m.max() == 1.0
    assert np.all(m.sum(axis=(1, 2, 3)) > 10)
    edge = (m > 0) & (m < 1)
    assert np.all(edge.sum(axis=(1, 2, 3)) > 4)  # anti-aliased outlines


def test_rotation_and_position_move_the_sprite():
    base = shapes.render(**{"class": "triangle"}, posx=0.3, posy=0.6)["mask"][0]
    ys, xs = np.nonzero(base > 0.5)
    assert abs(xs.mean() + 0.5 - 0.3 * 32) < 1.5 and abs(ys.mean() + 0.5 - 0.6 * 32) < 1.5
    up = shapes.render(**{"class": "triangle"}, posx=0.5, posy=0.5)["mask"][0]
    down = shapes.render(**{"class": "triangle"}, posx=0.5, posy=0.5, rotation=np.pi)["mask"][0]
    np.testing.assert_allclose(down, up[::-1, ::-1], atol=1e-4)  # a half turn about the centre
    assert up[:16].sum() < up[16:].sum() and down[:16].sum() > down[16:].sum()  # apex up, then down


def test_load_grouped_varies_one_factor_per_block():
    ds = shapes.Shapes()
    cfg = ds.resolve({"size": 100, "cache": False, "channels": 3})
    vary, group = ["rotation", "class", "posx"], 8
    d = ds.load_grouped(cfg, vary, group)
    assert len(d["image"]) == 96 and d["vary"].dtype == np.int64
    for b in range(96 // group):
        block = slice(b * group, (b + 1) * group)
        name = vary[b % len(vary)]
        assert np.all(d["vary"][block] == b % len(vary))
        for f in FACTORS:
            values = d[f][block]
            if f == name:
                assert f == "class" or len(np.unique(values)) == group
            else:
                assert np.all(values == values[0]), (b, f)
    again = ds.load_grouped(cfg, vary, group)
    assert all(d[k].tobytes() == again[k].tobytes() for k in d)
    item = shapes.render(**{k: d[k][13] for k in FACTORS}, channels=3)
    assert item["image"].tobytes() == d["image"][13].tobytes()


def test_load_grouped_without_vary_cycles_through_the_free_factors():
    ds = shapes.Shapes()
    d = ds.load_grouped(ds.resolve({"size": 24, "cache": False, "factors": {"hue": 0.5}}), [], 4)
    assert d["vary"].tolist() == [i // 4 for i in range(20)] + [0] * 4  # class .. posy, then class
    assert np.all(d["hue"] == np.float32(0.5))


def test_load_grouped_rejects_bad_requests():
    ds = shapes.Shapes()
    with pytest.raises(ValueError, match="vary: unknown factor 'size'"):
        ds.load_grouped(ds.resolve({"size": 10}), ["size"], 2)
    with pytest.raises(ValueError, match="factor 'scale' is fixed"):
        ds.load_grouped(ds.resolve({"size": 10, "factors": {"scale": 0.5}}), ["scale"], 2)
    with pytest.raises(ValueError, match="smaller than the group size"):
        ds.load_grouped(ds.resolve({"size": 3}), ["scale"], 4)


def test_metadata_names_factors_and_ranges():
    ds = shapes.Shapes()
    meta = ds.metadata(ds.resolve({"factors": {"rotation": [0, 1]}}))
    assert meta["image_size"] == 32 and meta["description"]
    assert meta["factors"]["rotation"]["range"] == [0.0, 1.0]
    assert meta["factors"]["class"]["classes"] == list(shapes.CLASSES)


def test_show_writes_a_grid_png(tmp_path):
    out = tmp_path / "grid.png"
    show("shapes", {"channels": 3}, 6, str(out))
    with Image.open(out) as im:
        assert im.mode == "RGB" and im.width > 3 * 96
    assert not (tmp_path / "cache").exists()  # show does not fill the cache by default


def test_parse_params():
    got = parse_params(["channels=3", "factors.rotation=[0, 1]", "factors.class=heart", "identities=A,C"])
    assert got == {"channels": 3, "factors": {"rotation": [0, 1], "class": "heart"}, "identities": ["A", "C"]}
    with pytest.raises(ValueError, match="key=value"):
        parse_params(["channels"])
