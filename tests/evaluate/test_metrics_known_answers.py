"""Known answers for the metric building blocks (FID, KID, precision/recall, protocol resize)."""
import numpy as np
import pytest
from PIL import Image
from scipy import linalg

from sb2bench.evaluate.metrics.fid import fid_from_features, folder_features, kid_from_features
from sb2bench.evaluate.metrics.precision_recall import precision_recall
from sb2bench.evaluate.protocol import protocol_resize


def _scipy_fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_of_a_set_with_itself_is_zero():
    feats = np.random.default_rng(0).normal(size=(200, 8))
    assert abs(fid_from_features(feats, feats)) < 1e-6


def test_fid_matches_an_independent_scipy_computation():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 6)), rng.normal(0.5, 1.3, size=(250, 6))
    assert fid_from_features(a, b) == pytest.approx(_scipy_fid(a, b), abs=1e-6)
    assert fid_from_features(a, b) > 1.0


def test_kid_is_near_zero_for_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(2)
    a, b, c = rng.normal(size=(400, 4)), rng.normal(size=(400, 4)), rng.normal(3, 1, size=(400, 4))
    assert abs(kid_from_features(a, b)) < 0.05 < kid_from_features(a, c)


def test_kid_is_deterministic_and_leaves_the_global_rng_alone():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(120, 4)).astype(np.float32), rng.normal(0.2, 1, size=(90, 4)).astype(np.float32)
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    values = {kid_from_features(a, b) for _ in range(3)}
    assert len(values) == 1
    assert np.random.random() == before


def _brute_force_pr(real, fake, k):
    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return np.sort(d, axis=1)[:, k]

    def cov(q, s, r):
        d = np.linalg.norm(q[:, None] - s[None], axis=-1)
        return float((d <= r[None]).any(1).mean())

    return cov(fake, real, radii(real)), cov(real, fake, radii(fake))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_precision_recall_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(60, 5)), rng.normal(0.4, 1.2, size=(45, 5))
    out = precision_recall(real, fake, k=3, batch=16)
    p, r = _brute_force_pr(real, fake, 3)
    assert (out["precision"], out["recall"]) == (pytest.approx(p), pytest.approx(r))
    assert 0 < out["precision"] < 1 and 0 < out["recall"] < 1


def test_precision_recall_identical_and_far_apart_sets():
    x = np.random.default_rng(3).normal(size=(50, 4))
    same = precision_recall(x, x.copy())
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    far = precision_recall(x, x + 1000.0)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    with pytest.raises(ValueError, match="more than k=3"):
        precision_recall(x[:3], x[:3])


def test_protocol_resize_is_centre_crop_then_lanczos():
    rng = np.random.default_rng(4)
    img = Image.fromarray(rng.integers(0, 255, size=(300, 500, 3), dtype=np.uint8))
    expected = img.crop((100, 0, 400, 300)).resize((256, 256), Image.LANCZOS)
    assert np.array_equal(np.asarray(protocol_resize(img)), np.asarray(expected))


def test_folder_features_change_when_images_change(tmp_path):
    """No stale cache: the same folder path with new images gives new features."""
    def write(value):
        for i in range(4):
            Image.fromarray(np.full((32, 32, 3), value + i, np.uint8)).save(tmp_path / f"{i:06d}.png")

    extractor = lambda x: x.mean(dim=(2, 3))  # noqa: E731  (channel means of the [0, 255] input)
    write(10)
    first = folder_features(tmp_path, extractor, native_size=True)
    write(200)
    second = folder_features(tmp_path, extractor, native_size=True)
    assert first.shape == (4, 3)
    assert np.allclose(first[:, 0], [10, 11, 12, 13], atol=1e-4)
    assert not np.allclose(first, second)
    with pytest.raises(FileNotFoundError, match="missing or empty"):
        folder_features(tmp_path / "none", extractor)
