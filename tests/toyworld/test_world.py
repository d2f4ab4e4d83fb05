"""The captioned-shapes world: determinism, captions, labels, rendering and the toy tokenizer."""
import itertools
import re

import numpy as np
import pytest

from sb2bench.toyworld import world
from sb2bench.toyworld.world import ATTRIBUTE_NAMES, ATTRIBUTES

# words/phrases that only the given attribute's values produce in a caption
VALUE_PHRASES = {
    "size": {v: v for v in world.SIZES},
    "position": {v: world.POSITION_PHRASE[v].strip() for v in world.POSITIONS},
    "background": {v: f"on a {v} background" for v in world.BACKGROUNDS},
    "style": {v: world.STYLE_SUFFIX[v].lstrip(", ") for v in world.STYLES},
}


def _words(caption: str) -> list[str]:
    return re.findall(r"[a-z]+", caption)


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_dataset():
    a = world.make_dataset(seed=3, n=6)
    b = world.make_dataset(seed=3, n=6)
    assert a.images.shape == (6, world.RESOLUTION, world.RESOLUTION, 3)
    assert a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images)
    assert a.captions == b.captions
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.mentioned, b.mentioned)


def test_different_seed_different_dataset():
    a = world.make_dataset(seed=3, n=6)
    b = world.make_dataset(seed=4, n=6)
    assert not np.array_equal(a.images, b.images)
    assert a.captions != b.captions
    assert not np.array_equal(a.labels, b.labels)


def test_items_within_a_stream_differ():
    d = world.make_dataset(seed=0, n=6)
    for i, j in itertools.combinations(range(6), 2):
        assert not np.array_equal(d.images[i], d.images[j])


def test_item_independent_of_slice():
    full = world.make_dataset(seed=11, n=8)
    for i in (0, 3, 7):
        alone = world.make_dataset(seed=11, n=1, start=i)
        assert np.array_equal(alone.images[0], full.images[i])
        assert alone.captions[0] == full.captions[i]
        assert np.array_equal(alone.labels[0], full.labels[i])
        assert np.array_equal(alone.mentioned[0], full.mentioned[i])
    tail = world.make_dataset(seed=11, n=3, start=5)
    assert np.array_equal(tail.images, full.images[5:8])
    assert tail.captions == full.captions[5:8]


def test_render_is_pure():
    scene = world.make_scenes(seed=1, n=1)[0]
    img = world.render(scene)
    assert img.shape == (32, 32, 3) and img.dtype == np.float32
    assert img.min() >= 0.0 and img.max() <= 1.0
    assert np.array_equal(img, world.render(scene))


# --------------------------------------------------------------------------- captions
def test_captions_name_shape_colour_and_exactly_the_mentioned():
    scenes = world.make_scenes(seed=5, n=120)
    n_optional_mentions = 0
    for s in scenes:
        cap, a = s.caption, s.attributes
        words = _words(cap)
        assert cap.startswith("a ")
        assert a["shape"] in words and a["colour"] in words
        assert "shape" in s.mentioned and "colour" in s.mentioned
        # only the scene's own shape/colour appear
        assert [w for w in words if w in world.SHAPES] == [a["shape"]]
        assert [w for w in words if w in world.COLOURS] == [a["colour"]]
        for attr, phrases in VALUE_PHRASES.items():
            present = [v for v, p in phrases.items() if re.search(rf"\b{p}\b", cap)]
            if attr in s.mentioned:
                assert present == [a[attr]], (attr, cap)
                n_optional_mentions += 1
            else:
                assert present == [], (attr, cap)
    # with mention_prob 0.5, some but not all optional attributes are named
    assert 0 < n_optional_mentions < 4 * len(scenes)


def test_caption_for_examples():
    attrs = {"shape": "triangle", "colour": "blue", "size": "small", "position": "right",
             "background": "white", "style": "painting"}
    assert world.caption_for(attrs, ("shape", "colour")) == "a blue triangle"
    assert world.caption_for(attrs, ATTRIBUTE_NAMES) == \
        "a small blue triangle on the right on a white background, oil painting"
    assert world.caption_for(attrs, ["style", "shape", "colour"]) == "a blue triangle, oil painting"


def test_mention_prob_extremes():
    none = world.make_scenes(seed=2, n=20, mention_prob=0.0)
    assert all(s.mentioned == ("shape", "colour") for s in none)
    every = world.make_scenes(seed=2, n=20, mention_prob=1.0)
    named = tuple(k for k in ATTRIBUTE_NAMES if k != "position")  # position only when forced
    assert all(s.mentioned == named for s in every)
    forced = world.make_scenes(seed=2, n=20, mention_prob=1.0, force_mention=("position",))
    assert all(s.mentioned == ATTRIBUTE_NAMES for s in forced)
    assert all(world.POSITION_PHRASE[s.attributes["position"]] in s.caption for s in forced)
    # the mention coins do not change what is drawn
    assert [s.attributes for s in none] == [s.attributes for s in every]


def test_force_mention():
    scenes = world.make_scenes(seed=2, n=20, mention_prob=0.0, force_mention=("style",))
    for s in scenes:
        assert s.mentioned == ("shape", "colour", "style")
        assert VALUE_PHRASES["style"][s.attributes["style"]] in s.caption


# --------------------------------------------------------------------------- fixed attributes
def test_fixed_pins_attributes():
    fixed = {"shape": "square", "colour": "green", "background": "gray"}
    batch = world.render_batch(world.make_scenes(seed=8, n=15, fixed=fixed))
    for s, cap in zip(batch.scenes, batch.captions):
        for k, v in fixed.items():
            assert s.attributes[k] == v
        assert "green square" in cap
    assert (batch.labels[:, ATTRIBUTE_NAMES.index("shape")] == ATTRIBUTES["shape"].index("square")).all()
    # unpinned attributes still vary
    assert len({s.attributes["style"] for s in batch.scenes}) > 1


@pytest.mark.parametrize("fixed", [{"colour": "purple"}, {"shape": "hexagon"}, {"size": "medium"},
                                   {"style": "Photo"}])
def test_fixed_invalid_value_raises(fixed):
    (key, value), = fixed.items()
    with pytest.raises(ValueError) as exc:
        world.make_scenes(seed=0, n=1, fixed=fixed)
    assert repr(value) in str(exc.value) and key in str(exc.value)


# --------------------------------------------------------------------------- labels
def test_labels_index_attributes():
    batch = world.make_dataset(seed=9, n=40)
    assert batch.labels.shape == (40, len(ATTRIBUTES)) and batch.labels.dtype == np.int64
    assert batch.mentioned.shape == (40, len(ATTRIBUTES)) and batch.mentioned.dtype == bool
    for row, mrow, s in zip(batch.labels, batch.mentioned, batch.scenes):
        for j, name in enumerate(ATTRIBUTE_NAMES):
            assert ATTRIBUTES[name][row[j]] == s.attributes[name]
            assert mrow[j] == (name in s.mentioned)
    # every value of every attribute occurs in 40 draws of at most 4 values
    for j, name in enumerate(ATTRIBUTE_NAMES):
        assert set(batch.labels[:, j]) == set(range(len(ATTRIBUTES[name])))


def test_empty_batch():
    b = world.render_batch([])
    assert b.images.shape == (0, 32, 32, 3)
    assert b.labels.shape == (0, len(ATTRIBUTES))
    assert b.mentioned.shape == (0, len(ATTRIBUTES))
    assert b.captions == []


# --------------------------------------------------------------------------- chance accuracy
def test_chance_joint_accuracy_hand_computed():
    # sizes: shape 3, colour 4, size 2, position 3, background 3, style 4
    m = np.array([[1, 1, 0, 0, 0, 0],
                  [1, 1, 1, 0, 0, 1],
                  [1, 1, 1, 1, 1, 1]], dtype=bool)
    expected = (1 / 12 + 1 / (12 * 2 * 4) + 1 / (3 * 4 * 2 * 3 * 3 * 4)) / 3
    assert world.chance_joint_accuracy(m) == pytest.approx(expected, rel=1e-12)
    assert world.chance_joint_accuracy(np.zeros((2, 6), bool)) == pytest.approx(1.0)
    assert np.isnan(world.chance_joint_accuracy(np.zeros((0, 6), bool)))


# --------------------------------------------------------------------------- rendering
def _scene(**attrs):
    base = {"shape": "circle", "size": "large", "position": "center", "background": "black", "style": "anime"}
    base.update(attrs)
    return world.make_scenes(seed=0, n=1, fixed=base)[0]


@pytest.mark.parametrize("style", world.STYLES)
def test_colour_shows_in_image(style):
    red = world.render(_scene(colour="red", style=style))
    blue = world.render(_scene(colour="blue", style=style))
    centre = (slice(13, 19), slice(13, 19))
    r_red = red[centre].mean(axis=(0, 1))
    r_blue = blue[centre].mean(axis=(0, 1))
    assert r_red[0] > r_red[2] + 0.3
    assert r_blue[2] > r_blue[0] + 0.3
    # a large shape dominates the whole image too (dark background)
    assert red[..., 0].mean() > red[..., 2].mean()
    assert blue[..., 2].mean() > blue[..., 0].mean()


def test_background_shows_in_corners():
    white = world.render(_scene(colour="red", background="white", size="small", style="anime"))
    black = world.render(_scene(colour="red", background="black", size="small", style="anime"))
    assert white[:3, :3].mean() > 0.85
    assert black[:3, :3].mean() < 0.15


def test_size_and_position_show_in_image():
    def coverage(img):  # fraction of pixels far from the black background
        return (img.max(axis=-1) > 0.3).mean()

    small = world.render(_scene(colour="yellow", size="small"))
    large = world.render(_scene(colour="yellow", size="large"))
    assert coverage(large) > 1.5 * coverage(small)

    def x_centre(img):
        w = (img.max(axis=-1) > 0.3).astype(float)
        return (w.sum(0) * np.arange(32)).sum() / w.sum()

    left = world.render(_scene(colour="yellow", size="small", position="left"))
    right = world.render(_scene(colour="yellow", size="small", position="right"))
    assert x_centre(left) < 14 < 18 < x_centre(right)


def test_shapes_render_differently():
    imgs = [world.render(_scene(colour="green", shape=s)) for s in world.SHAPES]
    for a, b in itertools.combinations(imgs, 2):
        assert np.abs(a - b).mean() > 0.01


# --------------------------------------------------------------------------- toy tokenizer
def test_toy_words_are_single_tokens(toy_tokenizer):
    from sb2bench.toyworld.tokenizer import toy_words

    words = toy_words()
    for required in ("circle", "red", "background", "anime", "photograph", ","):
        assert required in words
    for w in words:
        ids = toy_tokenizer(w).input_ids
        assert len(ids) == 3, (w, ids)
        assert ids[0] == toy_tokenizer.bos_token_id and ids[-1] == toy_tokenizer.eos_token_id
    assert len({toy_tokenizer(w).input_ids[1] for w in words}) == len(words)


def test_toy_tokenizer_is_small_and_captions_fit(toy_tokenizer):
    assert 500 < len(toy_tokenizer) < 1000
    assert toy_tokenizer.model_max_length == 20
    longest = 0
    for values in itertools.product(*ATTRIBUTES.values()):
        cap = world.caption_for(dict(zip(ATTRIBUTE_NAMES, values)), ATTRIBUTE_NAMES)
        ids = toy_tokenizer(cap).input_ids
        assert toy_tokenizer.unk_token_id not in ids[1:-1]
        longest = max(longest, len(ids))
    assert longest <= toy_tokenizer.model_max_length
