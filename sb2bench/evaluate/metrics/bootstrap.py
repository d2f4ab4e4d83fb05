"""Bootstrap confidence intervals over images, paired differences between systems, and spread over seeds.

A table entry like "FID 8.77" hides two kinds of noise: which images were drawn (bootstrap over
generated images, here) and which training run produced the model (:func:`seed_spread` over
>= 3 seeds). Every statistic here is a function of a *counts* vector (how often each image is drawn),
so one code path gives the point estimate (all ones), the bootstrap replicates (multinomial counts from
:func:`resample_indices`), the jackknife of BCa (a group left out) and a paired difference (the same
counts for both systems). The same ``seed`` and image count give the same index sets for every metric
and every system, and the result is deterministic.

Interval methods (``method``):
- ``basic`` (default): the basic (reverse-percentile) bootstrap with the replicates centred on their own
  mean: ``[θ̂ − (q_hi − m*), θ̂ − (q_lo − m*)]``. It covers the value the protocol gives in expectation at
  this image count; it always contains θ̂ and mirrors the skew of the replicates instead of shifting away
  from the point. For per-image means (m* ≈ θ̂) it is the textbook basic interval.
- ``bca``: bias-corrected and accelerated (Efron 1987), acceleration from a grouped jackknife. Right for
  the means; for FID / KID its bias correction aims at the infinite-sample value and can exclude θ̂.
- ``percentile``: the plain percentile interval (the old behaviour; FID's can exclude its own point).

What is resampled, and why:
- per-image means (CLIP score, HPS, attribute accuracy, precision): the per-image values;
- FID: generated features against fixed reference statistics. FID is biased upwards at finite n (about
  tr Σ_gen / n from the mean term alone) and a resample, drawn with replacement, carries that bias once
  more: the replicates sit above θ̂. Centring (``basic``) removes that shift;
- KID: the generated features in the full-sample unbiased MMD² (clean-fid's cubic kernel; it
  equals clean-fid's subset KID when both sets have the same size <= 1000);
- recall: the *reference* images, with the generated manifold fixed. Recall averages over
  reference images, and resampling the generated images would shrink their k-NN balls (duplicates
  sit at distance 0), biasing recall low instead of measuring its noise.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np

BLOCK_ELEMENTS = 1 << 22  # indices drawn per block (memory bound); the draws do not depend on it (tested)
JACKKNIFE_GROUPS = 100    # BCa's acceleration from a grouped jackknife: n leave-one-out FIDs would cost n eigh's
METHODS = {"basic": "basic bootstrap (centred)", "bca": "BCa bootstrap", "percentile": "percentile bootstrap"}
DEFAULT_METHOD = "basic"

Stat = Callable[[np.ndarray], np.ndarray]  # counts (rows, n) -> one value per row
PER_IMAGE = "per_image.npz"  # beside a metrics.json: the per-image arrays a paired claim resamples


def per_image_path(metrics_json: str | Path) -> Path:
    return Path(metrics_json).with_name(PER_IMAGE)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval (``method``: a key of :data:`METHODS`)."""
    estimate: float
    low: float
    high: float
    level: float
    n_boot: int
    seed: int
    n: int  # number of resampled images
    std_error: float
    method: str = DEFAULT_METHOD
    replicates: np.ndarray = field(default=None, repr=False, compare=False)

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def as_dict(self) -> dict:
        reps = np.asarray(self.replicates) if self.replicates is not None else np.array([self.estimate])
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level,
                "n_boot": self.n_boot, "seed": self.seed, "n": self.n, "std_error": self.std_error,
                "method": self.method, "method_text": f"{METHODS[self.method]} over images",
                "replicate_mean": float(reps.mean())}


@dataclass(frozen=True)
class SeedSpread:
    mean: float
    std: float  # sample standard deviation (ddof = 1)
    n: int

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "n": self.n}


def _check(n_boot: int, level: float, method: str = DEFAULT_METHOD) -> None:
    if not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), e.g. 0.95; got {level!r}")
    if method not in METHODS:
        raise ValueError(f"bootstrap method {method!r} is not one of {sorted(METHODS)}")


def resample_indices(n: int, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Blocks of bootstrap index rows, shape (rows, n), n_boot rows in all; same seed -> same rows."""
    if n < 1:
        raise ValueError("cannot bootstrap an empty set of images")
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = max(1, BLOCK_ELEMENTS // n)
    for start in range(0, n_boot, rows):
        yield rng.integers(0, n, size=(min(rows, n_boot - start), n))


def count_blocks(n: int, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """The rows of :func:`resample_indices` as counts: how often each image is drawn, shape (rows, n)."""
    for block in resample_indices(n, n_boot, seed):
        yield np.stack([np.bincount(row, minlength=n) for row in block]).astype(np.float64)


def replicates(stat: Stat, n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    return np.concatenate([np.asarray(stat(c), dtype=np.float64) for c in count_blocks(n, n_boot, seed)])


def jackknife(stat: Stat, n: int, groups: int = JACKKNIFE_GROUPS) -> np.ndarray:
    """Delete-a-group jackknife values (contiguous groups; one image per group when n <= groups)."""
    rows = np.ones((min(n, groups), n))
    for i, part in enumerate(np.array_split(np.arange(n), len(rows))):
        rows[i, part] = 0.0
    return np.asarray(stat(rows), dtype=np.float64)


def make_interval(estimate: float, reps: np.ndarray, level: float = 0.95, method: str = DEFAULT_METHOD, *,
                  jack: np.ndarray | None = None, seed: int = 0, n: int = 0) -> Interval:
    """The ``method`` interval of ``estimate`` from its bootstrap replicates (BCa also needs ``jack``)."""
    reps = np.asarray(reps, dtype=np.float64)
    if not np.isfinite(reps).all():
        raise ValueError(f"{int((~np.isfinite(reps)).sum())} bootstrap replicates are not finite")
    alpha = (1.0 - level) / 2.0
    q_lo, q_hi = np.quantile(reps, [alpha, 1.0 - alpha])
    if method == "percentile":
        low, high = q_lo, q_hi
    elif method == "basic":
        centre = reps.mean()
        low, high = estimate - (q_hi - centre), estimate - (q_lo - centre)
    elif method == "bca":
        if jack is None:
            raise ValueError("a BCa interval needs the jackknife values of the statistic")
        nd = NormalDist()
        below = (np.sum(reps < estimate) + 0.5 * np.sum(reps == estimate)) / len(reps)
        z0 = nd.inv_cdf(float(np.clip(below, 0.5 / len(reps), 1.0 - 0.5 / len(reps))))
        d = jack.mean() - jack
        denom = 6.0 * float((d ** 2).sum()) ** 1.5
        a = float((d ** 3).sum()) / denom if denom > 0 else 0.0
        probs = [nd.cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z))) for z in (nd.inv_cdf(alpha), nd.inv_cdf(1 - alpha))]
        low, high = np.quantile(reps, probs)
    else:
        raise ValueError(f"bootstrap method {method!r} is not one of {sorted(METHODS)}")
    return Interval(float(estimate), float(low), float(high), level, len(reps), seed, n,
                    float(reps.std(ddof=1)), method, reps)


def percentile_interval(estimate: float, reps: np.ndarray, level: float = 0.95, *, seed: int = 0,
                        n: int = 0) -> Interval:
    return make_interval(estimate, reps, level, "percentile", seed=seed, n=n)


def interval(stat: Stat, n: int, n_boot: int = 200, level: float = 0.95, seed: int = 0,
             method: str = DEFAULT_METHOD) -> Interval:
    """Interval of any counts statistic over ``n`` images; a paired difference is ``stat = a − b``."""
    _check(n_boot, level, method)
    estimate = float(np.asarray(stat(np.ones((1, n))))[0])
    jack = jackknife(stat, n) if method == "bca" else None
    return make_interval(estimate, replicates(stat, n, n_boot, seed), level, method, jack=jack, seed=seed, n=n)


def mean_stat(values) -> Stat:
    """Weighted mean of per-image values: CLIP score (cosines), HPS, attribute accuracy (0/1), precision."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise ValueError(f"need a 1-D array of finite per-image values, got shape {v.shape}")
    return lambda counts: (counts @ v) / counts.sum(axis=1)


def bootstrap_mean(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                   method: str = DEFAULT_METHOD) -> Interval:
    """Interval of a per-image mean: CLIP score (cosines), HPS, attribute accuracy (0/1), precision."""
    _check(n_boot, level, method)
    stat = mean_stat(values)
    return interval(stat, len(np.asarray(values)), n_boot, level, seed, method)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _fid_from_centred_sqrt(mu_g, cov_z, tr_cov_g, mu_ref, tr_ref) -> float:
    """|μg − μr|² + tr Σg + tr Σr − 2 tr sqrt(Σr^½ Σg Σr^½); cov_z = Σr^½ Σg Σr^½ (symmetric)."""
    eig = np.linalg.eigvalsh((cov_z + cov_z.T) / 2.0)
    diff = mu_g - mu_ref
    return float(diff @ diff + tr_cov_g + tr_ref - 2.0 * np.sqrt(np.clip(eig, 0.0, None)).sum())


def fid_stat(gen_feats, ref_mu, ref_sigma, device: str = "cpu") -> Stat:
    """FID of weighted generated features against fixed reference statistics.

    tr sqrt(Σg Σr) is taken as the eigenvalues of the symmetric Σr^½ Σg Σr^½ (Σr^½ computed once),
    which is stabler and faster than a general ``sqrtm`` per replicate; all ones gives the point estimate
    (it agrees with clean-fid's ``frechet_distance`` up to rounding).
    """
    x = np.asarray(gen_feats, dtype=np.float64)
    mu_r, sig_r = np.asarray(ref_mu, dtype=np.float64), np.asarray(ref_sigma, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2 or mu_r.shape != (x.shape[1],) or sig_r.shape != (x.shape[1],) * 2:
        raise ValueError(f"need gen features (N>=2, D) and reference mu (D,), sigma (D, D); got {x.shape}, "
                         f"{mu_r.shape}, {sig_r.shape}")
    import torch

    dtype = torch.float64 if device == "cpu" else torch.float32
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    zt = xt @ torch.as_tensor(_sqrt_psd(sig_r), dtype=dtype, device=device)  # features in the Σr^½ frame
    tr_ref = float(np.trace(sig_r))

    def fid_of(counts) -> float:
        m = float(counts.sum())
        w = counts / m
        mu_x, mu_z = w @ xt, w @ zt
        # unbiased (ddof = 1) covariances of the resample, as np.cov / clean-fid use
        cov_z = ((zt * counts[:, None]).T @ zt - m * torch.outer(mu_z, mu_z)) / (m - 1)
        tr_x = float(((xt * xt).T @ counts).sum() - m * (mu_x @ mu_x)) / (m - 1)
        return _fid_from_centred_sqrt(mu_x.cpu().numpy(), cov_z.cpu().numpy(), tr_x, mu_r, tr_ref)

    def stat(counts: np.ndarray) -> np.ndarray:
        ct = torch.as_tensor(counts, dtype=dtype, device=device)
        return np.array([fid_of(row) for row in ct])
    return stat


def bootstrap_fid(gen_feats, ref_mu, ref_sigma, n_boot: int = 200, level: float = 0.95, seed: int = 0,
                  device: str = "cpu", method: str = DEFAULT_METHOD) -> Interval:
    """FID interval: resample generated features, reference statistics fixed."""
    _check(n_boot, level, method)
    stat = fid_stat(gen_feats, ref_mu, ref_sigma, device)
    return interval(stat, len(np.asarray(gen_feats)), n_boot, level, seed, method)


def _kernel_sums(a, b, d: int, block: int = 2048):
    """Row sums of the clean-fid KID kernel k(x, y) = (x·y / d + 1)³ between tensors ``a`` and ``b``."""
    import torch

    out = torch.zeros(len(a), dtype=a.dtype, device=a.device)
    for j in range(0, len(b), block):
        out += ((a @ b[j:j + block].T / d + 1.0) ** 3).sum(1)
    return out


def kid_stat(gen_feats, ref_feats, device: str = "cpu", block: int = 2048) -> Stat:
    """Full-sample unbiased MMD² (clean-fid's cubic kernel) of weighted generated features.

    With counts c, Σ_{a≠b} k = cᵀ K c − c·diag(K); all rows share one pass over the generated kernel
    matrix in column blocks (memory O(rows · n), never n²).
    """
    import torch

    dtype = torch.float64 if device == "cpu" else torch.float32
    g = torch.as_tensor(np.asarray(gen_feats), dtype=dtype, device=device)
    r = torch.as_tensor(np.asarray(ref_feats), dtype=dtype, device=device)
    if g.ndim != 2 or r.ndim != 2 or g.shape[1] != r.shape[1] or len(g) < 2 or len(r) < 2:
        raise ValueError(f"need (N>=2, D) feature arrays with equal D, got {tuple(g.shape)}, {tuple(r.shape)}")
    n, m, d = len(g), len(r), g.shape[1]
    rr = float(_kernel_sums(r, r, d, block).sum() - ((r * r).sum(1) / d + 1.0).pow(3).sum()) / (m * (m - 1))
    gr_rows = _kernel_sums(g, r, d, block)  # per generated image: Σ_j k(g_i, r_j)
    diag = ((g * g).sum(1) / d + 1.0) ** 3

    def stat(counts: np.ndarray) -> np.ndarray:
        c = torch.as_tensor(counts, dtype=dtype, device=device)
        quad = torch.zeros(len(c), dtype=dtype, device=device)  # cᵀ K c per row of counts
        for j in range(0, n, block):
            k_block = (g @ g[j:j + block].T / d + 1.0) ** 3  # (n, block)
            quad += ((c @ k_block) * c[:, j:j + block]).sum(1)
        size = c.sum(1)
        kid = (quad - c @ diag) / (size * (size - 1)) + rr - 2.0 * (c @ gr_rows) / (size * m)
        return kid.cpu().numpy()
    return stat


def bootstrap_kid(gen_feats, ref_feats, n_boot: int = 200, level: float = 0.95, seed: int = 0,
                  device: str = "cpu", block: int = 2048, method: str = DEFAULT_METHOD) -> Interval:
    """KID interval over generated images (it equals clean-fid's subset KID for equal sizes <= 1000)."""
    _check(n_boot, level, method)
    stat = kid_stat(gen_feats, ref_feats, device, block)
    return interval(stat, len(np.asarray(gen_feats)), n_boot, level, seed, method)


def _inside(queries, support, radii, batch: int = 4096) -> np.ndarray:
    import torch

    out = []
    for i in range(0, len(queries), batch):
        out.append((torch.cdist(queries[i:i + batch], support) <= radii[None, :]).any(1))
    return torch.cat(out).cpu().numpy().astype(np.float64)


def precision_recall_indicators(real_feats, gen_feats, k: int = 3, device: str = "cpu") -> dict[str, np.ndarray]:
    """Per generated image: inside the real manifold (precision); per real image: inside the generated one
    (recall). Their means are ``precision_recall.precision_recall``."""
    from sb2bench.evaluate.metrics.precision_recall import _as_tensor, kth_neighbour_radii

    real, fake = _as_tensor(real_feats, device), _as_tensor(gen_feats, device)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, D) with equal D; got {tuple(real.shape)} and {tuple(fake.shape)}")
    return {"precision": _inside(fake, real, kth_neighbour_radii(real, k)),
            "recall": _inside(real, fake, kth_neighbour_radii(fake, k))}


def bootstrap_precision_recall(real_feats, gen_feats, k: int = 3, n_boot: int = 1000, level: float = 0.95,
                               seed: int = 0, device: str = "cpu", method: str = DEFAULT_METHOD) -> dict[str, Interval]:
    """Precision (resample generated images) and recall (resample reference images) intervals.

    Both are means of per-image indicators against the other set's fixed k-NN manifold, so each is
    a :func:`bootstrap_mean`; the point estimates equal ``precision_recall.precision_recall``.
    """
    ind = precision_recall_indicators(real_feats, gen_feats, k, device)
    return {name: bootstrap_mean(v, n_boot, level, seed, method) for name, v in ind.items()}


def seed_spread(values, min_n: int = 3) -> SeedSpread:
    """Mean, sample std (ddof = 1) and count of one metric over independent training seeds."""
    v = [float(x) for x in values]
    if len(v) < min_n:
        raise ValueError(f"seed spread needs at least {min_n} training seeds, got {len(v)}: train more seeds "
                         f"(config train.seeds) or lower min_n knowingly")
    if not all(math.isfinite(x) for x in v):
        raise ValueError(f"non-finite metric values across seeds: {v}")
    arr = np.array(v)
    return SeedSpread(float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, len(arr))
