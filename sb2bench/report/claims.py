"""The paper's claims checked on our measurements: a paired bootstrap of the difference, and one of three verdicts.

Two systems of a claim are scored on the same prompts with the same initial noise (refused at config
validation otherwise: ``sb2bench.plan.pairing``), so the noise of their *difference* is far smaller than the
two intervals added: prompts that are hard for one are hard for the other. Each resample draws image
indices once and applies them to both systems (FID recomputed from both systems' features, per-image means
re-averaged, recall over the shared reference images), from the per-image arrays ``evaluate`` writes beside
each metrics.json (``per_image.npz``). The interval of the difference (``evaluation.bootstrap``: replicates,
level, method) gives the verdict:

- **holds**: the whole interval lies in the paper's direction;
- **contradicted**: the whole interval lies against it;
- **inconclusive**: the interval contains 0. Its half-width is the smallest difference the test could have
  told from 0 (shown as "detectable"), so an inconclusive row says how large an effect it rules out.

Training seeds: a run repeated over seeds is paired seed by seed with the other side (seed i with seed i when
both repeat, else every seed with the single run); the statistic is the mean difference over those pairs,
bootstrapped over images with the same indices for every pair, and with two or more pairs its half-widths
are widened (in quadrature) by the t interval of the pairs' differences over seeds, the training noise.
An interior-λ claim bootstraps "best interior λ minus better end" with the selection redone on every
resample, so picking the best λ on the same images is not mistaken for an effect.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sb2bench.evaluate.metrics import bootstrap as bs
from sb2bench.report.tables import COLUMNS, fmt_system, fmt_value, read_system

VERDICTS = ("holds", "contradicted", "inconclusive")
PAIRING_KEYS = ("prompts_sha256", "n", "noise_seed", "reference_sha256", "protocol")


def lower_is_better(metric: str) -> bool:
    return "↓" in COLUMNS[metric][0]


@dataclass
class Verdict:
    claim: dict
    measured: str       # the figures compared, as text
    difference: float   # point estimate, positive = in the paper's direction
    low: float          # interval of the difference (paper's direction)
    high: float
    level: float
    method: str         # how the interval was made, in words
    verdict: str

    @property
    def detectable(self) -> float:
        """The smallest difference this test could tell from 0: the half-width of its interval."""
        return (self.high - self.low) / 2.0


@dataclass(frozen=True)
class PerImage:
    """One scored image set's per-image arrays (``per_image.npz``)."""
    path: Path
    arrays: dict
    pairing: dict

    @classmethod
    def load(cls, metrics_json: str | Path) -> "PerImage":
        path = bs.per_image_path(metrics_json)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no per-image arrays beside {metrics_json}; re-run its evaluate job "
                                    f"(sb2bench evaluate writes them since paired claims)")
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(path, arrays, json.loads(str(arrays.pop("pairing"))))

    def stat(self, metric: str, device: str = "cpu") -> tuple[bs.Stat, str]:
        """The metric as a counts statistic, and the unit it resamples ("prompt" or "reference")."""
        a = self.arrays
        if metric == "fid":
            return bs.fid_stat(a["gen_features"], a["ref_mu"], a["ref_sigma"], device), "prompt"
        if metric == "kid":
            if "ref_features" not in a:
                raise ValueError(f"{self.path}: the reference features were too large to store; KID claims "
                                 f"cannot be paired here (claim FID instead)")
            return bs.kid_stat(a["gen_features"], a["ref_features"], device), "prompt"
        if f"value_{metric}" not in a:
            raise ValueError(f"{self.path}: no per-image {metric}; paired claims support fid, kid, precision, "
                             f"recall, clip_score and attribute_accuracy (toy world)")
        return bs.mean_stat(a[f"value_{metric}"]), "reference" if metric == "recall" else "prompt"


def _metrics_json(files: str | list[str]) -> str:
    files = [files] if isinstance(files, str) else files
    return next((f for f in files if Path(f).name == "metrics.json"), files[0])


def _seeds(source) -> list[PerImage]:
    if isinstance(source, dict):
        return [PerImage.load(_metrics_json(files)) for files in source["seeds"]]
    return [PerImage.load(_metrics_json(source))]


def check_pairable(claim_id: str, named: dict[str, PerImage]) -> None:
    """Every image set of a claim was scored on the same prompts, noise and reference (else no pairing)."""
    items = list(named.items())
    first_name, first = items[0]
    for name, p in items[1:]:
        diff = [k for k in PAIRING_KEYS if p.pairing.get(k) != first.pairing.get(k)]
        if diff or not np.array_equal(p.arrays["prompt_index"], first.arrays["prompt_index"]):
            what = ", ".join(f"{k} {first.pairing.get(k)!r} vs {p.pairing.get(k)!r}" for k in diff) or "prompt order"
            raise ValueError(f"claim {claim_id}: {first_name} and {name} were not scored on the same prompts and "
                             f"noise ({what}), so they cannot be paired; sample both on one evaluation set and seed")


def _t_quantile(p: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, df))


def judge(claim: dict, stat: bs.Stat, n: int, unit: str, boot: dict, pair_points: list[float] | None = None) -> tuple:
    """(estimate, low, high, method text) of ``stat`` (the difference, paper's direction) over ``n`` units;
    ``pair_points``: the per-seed-pair differences, whose spread over seeds widens the interval."""
    n_boot = int(boot.get("n_boot") or 0)
    if n_boot < 2:
        raise ValueError(f"claim {claim['id']}: evaluation.bootstrap.n_boot is {n_boot}; claims need >= 2 "
                         f"resamples (e.g. 200)")
    level, method = boot.get("level", 0.95), boot.get("method", bs.DEFAULT_METHOD)
    iv = bs.interval(stat, n, n_boot, level, boot.get("seed", 0), method)
    est, low, high = iv.estimate, iv.low, iv.high
    text = f"{level:.0%} paired {bs.METHODS[method]}, {n_boot} resamples of {n} {unit} images"
    if pair_points is not None and len(pair_points) >= 2:
        k = len(pair_points)
        h_seed = _t_quantile(0.5 + level / 2, k - 1) * float(np.std(pair_points, ddof=1)) / math.sqrt(k)
        low, high = est - math.hypot(est - low, h_seed), est + math.hypot(high - est, h_seed)
        text += f", widened by the t interval over {k} seed pairs"
    return est, low, high, text


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return "holds"
    if high < 0:
        return "contradicted"
    return "inconclusive"


def _pairs(a: list, b: list) -> list[tuple]:
    if len(a) > 1 and len(b) > 1:
        return list(zip(a, b))
    return [(x, y) for x in a for y in b]


def check_better(claim: dict, sources: dict, boot: dict, device: str = "cpu") -> Verdict:
    """``system`` beats ``than`` on ``metric`` (paired over images, seed replicas paired seed by seed)."""
    m = claim["metric"]
    sign = -1.0 if lower_is_better(m) else 1.0
    sa, sb = _seeds(sources[claim["system"]]), _seeds(sources[claim["than"]])
    check_pairable(claim["id"], {**{f"{claim['system']} (seed {i})": p for i, p in enumerate(sa)},
                                 **{f"{claim['than']} (seed {i})": p for i, p in enumerate(sb)}})
    stats_a = [p.stat(m, device) for p in sa]
    stats_b = [p.stat(m, device) for p in sb]
    pairs = _pairs([s for s, _ in stats_a], [s for s, _ in stats_b])
    unit = stats_a[0][1]
    n = len(sa[0].arrays["value_recall"]) if unit == "reference" else len(sa[0].arrays["prompt_index"])

    def diff(counts: np.ndarray) -> np.ndarray:
        return np.mean([sign * (fa(counts) - fb(counts)) for fa, fb in pairs], axis=0)

    ones = np.ones((1, n))
    points = [float(sign * (fa(ones) - fb(ones))[0]) for fa, fb in pairs]
    est, low, high, text = judge(claim, diff, n, unit, boot, points)
    a, b = read_system(sources[claim["system"]]), read_system(sources[claim["than"]])
    measured = f"{claim['system']} {fmt_system(a, m)} vs {claim['than']} {fmt_system(b, m)}"
    return Verdict(claim, measured, est, low, high, boot.get("level", 0.95), text, _verdict(low, high))


def check_interior_best(claim: dict, sweep: list[dict], boot: dict, device: str = "cpu") -> Verdict:
    """The best interior λ of a merge sweep beats both ends (``sweep``: [{lambda, source}], ends included);
    the best interior and the better end are picked again on every resample."""
    m = claim["metric"]
    sign = -1.0 if lower_is_better(m) else 1.0
    points = sorted(((float(p["lambda"]), p["source"]) for p in sweep), key=lambda p: p[0])
    ends = [p for p in points if p[0] in (0.0, 1.0)]
    inner = [p for p in points if 0.0 < p[0] < 1.0]
    if len(ends) != 2 or not inner:
        raise ValueError(f"claim {claim['id']}: merge {claim['merge']!r} needs λ = 0, λ = 1 and an interior λ")
    per = {lam: _seeds(src)[0] for lam, src in points}
    check_pairable(claim["id"], {f"λ {lam:g}": p for lam, p in per.items()})
    stats = {lam: p.stat(m, device) for lam, p in per.items()}
    unit = next(iter(stats.values()))[1]
    first = next(iter(per.values()))
    n = len(first.arrays["value_recall"]) if unit == "reference" else len(first.arrays["prompt_index"])

    def best(lams: list, counts: np.ndarray) -> np.ndarray:  # best = highest sign * value
        return np.max([sign * stats[lam][0](counts) for lam in lams], axis=0)

    def diff(counts: np.ndarray) -> np.ndarray:
        return best([p[0] for p in inner], counts) - best([p[0] for p in ends], counts)

    est, low, high, text = judge(claim, diff, n, unit, boot)
    systems = {lam: read_system(src) for lam, src in points}
    key = lambda lam: sign * systems[lam].values[m]  # noqa: E731
    bi, be = max((p[0] for p in inner), key=key), max((p[0] for p in ends), key=key)
    measured = (f"best interior λ = {bi:g}: {fmt_system(systems[bi], m)}; better end λ = {be:g}: "
                f"{fmt_system(systems[be], m)}; all: "
                + ", ".join(f"λ {lam:g} {fmt_value(sm.values[m], m)}" for lam, sm in systems.items()))
    return Verdict(claim, measured, est, low, high, boot.get("level", 0.95),
                   text + "; best λ picked again on every resample", _verdict(low, high))


def check_claims(claims: list[dict], sources: dict, sweeps: dict, boot: dict, device: str = "cpu") -> list[Verdict]:
    """``sources``: system -> metric source (``read_system``); ``sweeps``: merge -> its points;
    ``boot``: evaluation.bootstrap (n_boot, level, seed, method). A claim may carry its own ``sources`` or
    ``sweep`` (the whole-set scores of ``evaluation.subset``'s systems), which then replace these."""
    return [check_interior_best(c, c.get("sweep") or sweeps[c["merge"]], boot, device) if c["kind"] == "interior_best"
            else check_better(c, c.get("sources") or sources, boot, device) for c in claims]
