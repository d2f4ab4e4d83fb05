"""Bootstrap confidence intervals over images, and spread over training seeds.

A table entry like "FID 8.77" hides two kinds of noise: which images were drawn (bootstrap over
generated images, here) and which training run produced the model (:func:`seed_spread` over
>= 3 seeds). Every bootstrap draws its resamples from :func:`resample_indices`, so the same
``seed`` and image count give the same index sets for every metric (paired intervals), and the
result is deterministic. Intervals are plain percentile intervals of the replicates.

What is resampled, and why:
- per-image means (CLIP score, HPS, attribute accuracy, precision): the per-image values;
- FID: generated features against fixed reference statistics. Resampling with replacement adds
  about tr(Σ_gen)/n to FID on average, so the interval sits slightly above the point estimate;
- KID: the generated features in the full-sample unbiased MMD² (clean-fid's cubic kernel; it
  equals clean-fid's subset KID when both sets have the same size <= 1000);
- recall: the *reference* images, with the generated manifold fixed. Recall averages over
  reference images, and resampling the generated images would shrink their k-NN balls (duplicates
  sit at distance 0), biasing recall low instead of measuring its noise.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

BLOCK_ELEMENTS = 1 << 22  # indices drawn per block (memory bound); the draws do not depend on it (tested)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap percentile interval."""
    estimate: float
    low: float
    high: float
    level: float
    n_boot: int
    seed: int
    n: int  # number of resampled images
    std_error: float
    replicates: np.ndarray = field(repr=False, compare=False)

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def as_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level,
                "n_boot": self.n_boot, "seed": self.seed, "n": self.n, "std_error": self.std_error,
                "method": "percentile bootstrap over images"}


@dataclass(frozen=True)
class SeedSpread:
    mean: float
    std: float  # sample standard deviation (ddof = 1)
    n: int

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "n": self.n}


def _check(n_boot: int, level: float) -> None:
    if not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), e.g. 0.95; got {level!r}")


def resample_indices(n: int, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Blocks of bootstrap index rows, shape (rows, n), n_boot rows in all; same seed -> same rows."""
    if n < 1:
        raise ValueError("cannot bootstrap an empty set of images")
    rng = np.random.Generator(np.random.PCG64(seed))
    rows = max(1, BLOCK_ELEMENTS // n)
    for start in range(0, n_boot, rows):
        yield rng.integers(0, n, size=(min(rows, n_boot - start), n))


def percentile_interval(estimate: float, replicates: np.ndarray, level: float = 0.95, *, seed: int = 0,
                        n: int = 0) -> Interval:
    reps = np.asarray(replicates, dtype=np.float64)
    if not np.isfinite(reps).all():
        raise ValueError(f"{int((~np.isfinite(reps)).sum())} bootstrap replicates are not finite")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return Interval(float(estimate), float(low), float(high), level, len(reps), seed, n,
                    float(reps.std(ddof=1)), reps)


def bootstrap_mean(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Interval of a per-image mean: CLIP score (cosines), HPS, attribute accuracy (0/1), precision."""
    _check(n_boot, level)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise ValueError(f"need a 1-D array of finite per-image values, got shape {v.shape}")
    reps = np.concatenate([v[idx].mean(axis=1) for idx in resample_indices(len(v), n_boot, seed)])
    return percentile_interval(v.mean(), reps, level, seed=seed, n=len(v))


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _fid_from_centred_sqrt(mu_g, cov_z, tr_cov_g, mu_ref, tr_ref) -> float:
    """|μg − μr|² + tr Σg + tr Σr − 2 tr sqrt(Σr^½ Σg Σr^½); cov_z = Σr^½ Σg Σr^½ (symmetric)."""
    eig = np.linalg.eigvalsh((cov_z + cov_z.T) / 2.0)
    diff = mu_g - mu_ref
    return float(diff @ diff + tr_cov_g + tr_ref - 2.0 * np.sqrt(np.clip(eig, 0.0, None)).sum())


def bootstrap_fid(gen_feats, ref_mu, ref_sigma, n_boot: int = 200, level: float = 0.95, seed: int = 0,
                  device: str = "cpu") -> Interval:
    """FID interval: resample generated features, reference statistics fixed.

    tr sqrt(Σg Σr) is taken as the eigenvalues of the symmetric Σr^½ Σg Σr^½ (Σr^½ computed once),
    which is stabler and faster than a general ``sqrtm`` per replicate; the point estimate uses the
    same formula (it agrees with clean-fid's ``frechet_distance`` up to rounding).
    """
    _check(n_boot, level)
    x = np.asarray(gen_feats, dtype=np.float64)
    mu_r, sig_r = np.asarray(ref_mu, dtype=np.float64), np.asarray(ref_sigma, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2 or mu_r.shape != (x.shape[1],) or sig_r.shape != (x.shape[1],) * 2:
        raise ValueError(f"need gen features (N>=2, D) and reference mu (D,), sigma (D, D); got {x.shape}, "
                         f"{mu_r.shape}, {sig_r.shape}")
    n = len(x)
    s = _sqrt_psd(sig_r)
    dtype = torch.float64 if device == "cpu" else torch.float32
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    zt = xt @ torch.as_tensor(s, dtype=dtype, device=device)  # features in the Σr^½ frame
    tr_ref = float(np.trace(sig_r))

    def fid_of(counts: torch.Tensor) -> float:
        w = counts / n
        mu_x, mu_z = w @ xt, w @ zt
        # unbiased (ddof = 1) covariances of the resample, as np.cov / clean-fid use
        cov_z = ((zt * counts[:, None]).T @ zt - n * torch.outer(mu_z, mu_z)) / (n - 1)
        tr_x = float(((xt * xt).T @ counts).sum() - n * (mu_x @ mu_x)) / (n - 1)
        return _fid_from_centred_sqrt(mu_x.cpu().numpy(), cov_z.cpu().numpy(), tr_x, mu_r, tr_ref)

    estimate = fid_of(torch.ones(n, dtype=dtype, device=device))
    reps = []
    for block in resample_indices(n, n_boot, seed):
        for idx in block:
            counts = torch.as_tensor(np.bincount(idx, minlength=n), dtype=dtype, device=device)
            reps.append(fid_of(counts))
    return percentile_interval(estimate, np.array(reps), level, seed=seed, n=n)


def _kernel_sums(a: torch.Tensor, b: torch.Tensor, d: int, block: int = 2048) -> torch.Tensor:
    """Row sums of the clean-fid KID kernel k(x, y) = (x·y / d + 1)³ between ``a`` and ``b``."""
    out = torch.zeros(len(a), dtype=a.dtype, device=a.device)
    for j in range(0, len(b), block):
        out += ((a @ b[j:j + block].T / d + 1.0) ** 3).sum(1)
    return out


def bootstrap_kid(gen_feats, ref_feats, n_boot: int = 200, level: float = 0.95, seed: int = 0,
                  device: str = "cpu", block: int = 2048) -> Interval:
    """KID interval over generated images: full-sample unbiased MMD² with clean-fid's cubic kernel.

    With counts c of a resample, Σ_{a≠b} k = cᵀ K c − c·diag(K); all replicates share one pass over
    the generated kernel matrix in column blocks (memory O(n_boot · n), never n²).
    """
    _check(n_boot, level)
    dtype = torch.float64 if device == "cpu" else torch.float32
    g = torch.as_tensor(np.asarray(gen_feats), dtype=dtype, device=device)
    r = torch.as_tensor(np.asarray(ref_feats), dtype=dtype, device=device)
    if g.ndim != 2 or r.ndim != 2 or g.shape[1] != r.shape[1] or len(g) < 2 or len(r) < 2:
        raise ValueError(f"need (N>=2, D) feature arrays with equal D, got {tuple(g.shape)}, {tuple(r.shape)}")
    n, m, d = len(g), len(r), g.shape[1]
    rr = float(_kernel_sums(r, r, d, block).sum() - ((r * r).sum(1) / d + 1.0).pow(3).sum()) / (m * (m - 1))
    gr_rows = _kernel_sums(g, r, d, block)  # per generated image: Σ_j k(g_i, r_j)
    diag = ((g * g).sum(1) / d + 1.0) ** 3
    rows = [np.ones((1, n))] + [np.stack([np.bincount(i, minlength=n) for i in idx])
                                for idx in resample_indices(n, n_boot, seed)]
    counts = torch.as_tensor(np.concatenate(rows), dtype=dtype, device=device)  # row 0: the full sample
    quad = torch.zeros(len(counts), dtype=dtype, device=device)  # cᵀ K c per row of counts
    for j in range(0, n, block):
        k_block = (g @ g[j:j + block].T / d + 1.0) ** 3  # (n, block)
        quad += ((counts @ k_block) * counts[:, j:j + block]).sum(1)
    gg = (quad - counts @ diag) / (n * (n - 1))
    kid = gg + rr - 2.0 * (counts @ gr_rows) / (n * m)
    kid = kid.cpu().numpy()
    return percentile_interval(kid[0], kid[1:], level, seed=seed, n=n)


def _inside(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, batch: int = 4096) -> np.ndarray:
    out = []
    for i in range(0, len(queries), batch):
        out.append((torch.cdist(queries[i:i + batch], support) <= radii[None, :]).any(1))
    return torch.cat(out).cpu().numpy().astype(np.float64)


def bootstrap_precision_recall(real_feats, gen_feats, k: int = 3, n_boot: int = 1000, level: float = 0.95,
                               seed: int = 0, device: str = "cpu") -> dict[str, Interval]:
    """Precision (resample generated images) and recall (resample reference images) intervals.

    Both are means of per-image indicators against the other set's fixed k-NN manifold, so each is
    a :func:`bootstrap_mean`; the point estimates equal ``precision_recall.precision_recall``.
    """
    from sb2bench.evaluate.metrics.precision_recall import _as_tensor, kth_neighbour_radii

    real, fake = _as_tensor(real_feats, device), _as_tensor(gen_feats, device)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, D) with equal D; got {tuple(real.shape)} and {tuple(fake.shape)}")
    fake_in_real = _inside(fake, real, kth_neighbour_radii(real, k))
    real_in_fake = _inside(real, fake, kth_neighbour_radii(fake, k))
    return {"precision": bootstrap_mean(fake_in_real, n_boot, level, seed),
            "recall": bootstrap_mean(real_in_fake, n_boot, level, seed)}


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
