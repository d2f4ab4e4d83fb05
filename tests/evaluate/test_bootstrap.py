"""Bootstrap intervals: containment, determinism, shrinking width, and agreement with brute force."""
import numpy as np
import pytest
import torch

from sb2bench.evaluate.metrics import bootstrap as bs
from sb2bench.evaluate.metrics.fid import feature_stats, fid_from_features, kid_from_features
from sb2bench.evaluate.metrics.precision_recall import precision_recall

torch.set_num_threads(1)


def _gauss(n, d=6, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(shift, 1.0, size=(n, d))


def test_mean_interval_contains_estimate_and_matches_brute_force():
    v = np.random.default_rng(0).normal(0.3, 0.05, size=400)
    iv = bs.bootstrap_mean(v, n_boot=300, seed=7)
    assert iv.contains(iv.estimate) and iv.estimate == pytest.approx(v.mean())
    brute = [np.mean([v[j] for j in row]) for block in bs.resample_indices(len(v), 300, 7) for row in block]
    np.testing.assert_allclose(iv.replicates, brute, rtol=1e-12)
    lo, hi = np.quantile(brute, [0.025, 0.975])
    assert (iv.low, iv.high) == pytest.approx((lo, hi))
    assert iv.as_dict()["n_boot"] == 300 and iv.level == 0.95


def test_attribute_accuracy_booleans():
    correct = np.random.default_rng(1).random(500) < 0.7
    iv = bs.bootstrap_mean(correct, n_boot=200, level=0.9)
    assert 0.6 < iv.low < iv.estimate < iv.high < 0.8


def test_deterministic_and_seed_dependent():
    v = np.random.default_rng(2).random(100)
    a, b = bs.bootstrap_mean(v, 100, seed=3), bs.bootstrap_mean(v, 100, seed=3)
    assert np.array_equal(a.replicates, b.replicates) and (a.low, a.high) == (b.low, b.high)
    assert not np.array_equal(a.replicates, bs.bootstrap_mean(v, 100, seed=4).replicates)


def test_blocks_do_not_change_the_draws(monkeypatch):
    whole = np.concatenate(list(bs.resample_indices(51, 41, seed=5)))
    monkeypatch.setattr(bs, "BLOCK_ELEMENTS", 51 * 7)  # 7 rows per block
    blocks = list(bs.resample_indices(51, 41, seed=5))
    assert len(blocks) == 6
    assert np.array_equal(np.concatenate(blocks), whole)


def test_width_shrinks_with_more_images():
    rng = np.random.default_rng(4)
    small = bs.bootstrap_mean(rng.normal(size=100), 400, seed=0)
    large = bs.bootstrap_mean(rng.normal(size=2500), 400, seed=0)
    ratio = (small.high - small.low) / (large.high - large.low)
    assert 3.0 < ratio < 7.0  # about sqrt(25) = 5


def test_fid_interval_matches_clean_fid_and_brute_force():
    ref, gen = _gauss(2000, seed=1), _gauss(300, shift=0.5, seed=2)
    mu, sigma = feature_stats(ref)
    iv = bs.bootstrap_fid(gen, mu, sigma, n_boot=30, seed=0)
    assert iv.estimate == pytest.approx(fid_from_features(ref, gen), rel=1e-6)
    assert iv.contains(iv.estimate)
    brute = [fid_from_features(ref, gen[row]) for block in bs.resample_indices(len(gen), 30, 0) for row in block]
    np.testing.assert_allclose(iv.replicates, brute, rtol=1e-6)
    wide = bs.bootstrap_fid(gen[:75], mu, sigma, n_boot=30, seed=0)
    assert wide.high - wide.low > iv.high - iv.low


def test_kid_interval_matches_clean_fid_and_brute_force():
    ref, gen = _gauss(120, seed=3), _gauss(120, shift=0.4, seed=4)
    iv = bs.bootstrap_kid(gen, ref, n_boot=40, seed=1, block=50)
    assert iv.estimate == pytest.approx(kid_from_features(ref, gen), rel=1e-9)  # same size <= 1000: exact
    assert iv.contains(iv.estimate)
    d = ref.shape[1]

    def kid(g, r):  # unbiased MMD² over index positions, straight from the definition
        k = lambda a, b: (a @ b.T / d + 1) ** 3
        kgg, krr = k(g, g), k(r, r)
        n, m = len(g), len(r)
        return ((kgg.sum() - np.trace(kgg)) / (n * (n - 1)) + (krr.sum() - np.trace(krr)) / (m * (m - 1))
                - 2 * k(g, r).mean())

    brute = [kid(gen[row], ref) for block in bs.resample_indices(len(gen), 40, 1) for row in block]
    np.testing.assert_allclose(iv.replicates, brute, rtol=1e-9)


def test_precision_recall_intervals():
    real, fake = _gauss(400, d=4, seed=5), _gauss(300, d=4, shift=0.3, seed=6)
    out = bs.bootstrap_precision_recall(real, fake, k=3, n_boot=200, seed=2)
    point = precision_recall(real, fake, k=3)
    for key in ("precision", "recall"):
        assert out[key].estimate == pytest.approx(point[key])
        assert out[key].contains(out[key].estimate)
    assert out["precision"].n == 300 and out["recall"].n == 400


def test_seed_spread():
    s = bs.seed_spread([8.7, 8.9, 9.1])
    assert (s.mean, s.n) == (pytest.approx(8.9), 3) and s.std == pytest.approx(0.2)
    with pytest.raises(ValueError, match="at least 3"):
        bs.seed_spread([1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        bs.seed_spread([1.0, 2.0, float("nan")])


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_boot"):
        bs.bootstrap_mean([1.0, 2.0], n_boot=1)
    with pytest.raises(ValueError, match="level"):
        bs.bootstrap_mean([1.0, 2.0], level=95)
    with pytest.raises(ValueError, match="finite"):
        bs.bootstrap_mean([1.0, float("nan")])
