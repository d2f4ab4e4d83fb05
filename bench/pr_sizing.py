"""Precision and recall against the evaluation-set size, with an ideal generator as the yardstick (issue 12).

k-NN precision and recall (Kynkäänniemi et al., k = 3) read very differently on the toy set's first 500
prompts and on all 6000. Is that the systems or the metric? An *ideal generator* answers it: for every
evaluation prompt it renders a fresh scene from the world's own conditional distribution (the attributes the
caption names kept, every other attribute and the render jitter drawn anew), so it is exactly as sharp and
as diverse as the reference. Whatever precision and recall it gets at a size n is the metric's ceiling at
that n. Reads a toy results folder in which some systems were sampled on the whole set (the full tier:
``config/toy_full.yaml``), takes the first n prompts for each n (the set and its noise are prefix-stable),
and writes, per system and n, precision, recall, FID, the median k-NN radius of the reference features and
the number of distinct attribute combinations among the n prompts: reports/bench/pr_sizing.{json,md}.

    python bench/pr_sizing.py --results results/toy --systems teacher-cfg4.5 turbo-1step \
        --sizes 500 1000 2000 4000 6000 --work /tmp/pr_sizing
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import _toy_runs as toy  # noqa: E402

from sb2bench._infra.atomic import atomic_dir, atomic_file, write_json  # noqa: E402
from sb2bench._infra.provenance import package_versions  # noqa: E402
from sb2bench.data.prompts import read_prompts  # noqa: E402
from sb2bench.evaluate.metrics.bootstrap import precision_recall_indicators  # noqa: E402
from sb2bench.evaluate.metrics.fid import fid_from_features  # noqa: E402
from sb2bench.evaluate.metrics.precision_recall import kth_neighbour_radii  # noqa: E402
from sb2bench.toyworld import world  # noqa: E402

IDEAL_STREAM = 9_000  # + --ideal-seed: apart from the training (1000 + s) and evaluation (2000 + s) streams
IDEAL = "ideal generator"


def ideal_renders(prompts: list[dict], seed: int, out: Path) -> Path:
    """One fresh render per prompt from the world's conditional distribution given its caption."""
    key = {"prompts": hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest(), "seed": seed}
    if (out / "done.json").exists() and json.loads((out / "done.json").read_text()) == key:
        return out  # rendered from these very prompts (keyed by content) with this stream
    with atomic_dir(out) as tmp:
        for row in prompts:
            named = tuple(row["mentioned"])
            scene = world.sample_scene(world.scene_rng(IDEAL_STREAM + seed, row["index"]), mention_prob=0.0,
                                       fixed={k: row["attributes"][k] for k in named}, force_mention=named)
            if scene.caption != row["caption"]:
                raise RuntimeError(f"prompt {row['index']}: the ideal render's caption {scene.caption!r} differs "
                                   f"from {row['caption']!r}")
            Image.fromarray(world.to_uint8(world.render(scene))).save(tmp / f"{row['index']:06d}.png")
        (tmp / "done.json").write_text(json.dumps(key))
    return out


def scores(ref: np.ndarray, gen: np.ndarray, k: int) -> dict:
    ind = precision_recall_indicators(ref, gen, k)
    return {"precision": float(ind["precision"].mean()), "recall": float(ind["recall"].mean()),
            "fid": float(fid_from_features(ref, gen))}


def markdown(rec: dict) -> str:
    sizes = rec["sizes"]
    lines = ["# Precision and recall against the evaluation-set size (toy world)", "",
             "k-NN precision / recall (k = " + str(rec["k"]) + ") and FID on the first n prompts of the toy "
             "evaluation set, for the whole-set systems and an **ideal generator** (a fresh render of every "
             "prompt from the world's own conditional distribution: the metric's ceiling at that n). Written by "
             "`bench/pr_sizing.py`; command and versions in the JSON beside this file.", "",
             "| n | distinct attribute combinations | median k-NN radius (reference) | system | precision | "
             "recall | FID |", "|---:|---:|---:|---|---:|---:|---:|"]
    for n in sizes:
        row = rec["by_size"][str(n)]
        for name, s in row["systems"].items():
            lines.append(f"| {n} | {row['combinations']} | {row['ref_radius_median']:.3f} | {name} | "
                         f"{s['precision']:.3f} | {s['recall']:.3f} | {s['fid']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", required=True, type=Path, help="a toy results folder (results/toy)")
    ap.add_argument("--systems", nargs="+", required=True, help="systems sampled on the whole set")
    ap.add_argument("--sizes", nargs="+", type=int, required=True)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--ideal-seed", type=int, default=0, help="the ideal generator's stream (its fresh jitter)")
    ap.add_argument("--work", type=Path, required=True, help="where the ideal renders and features are cached")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "pr_sizing")
    a = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    prompts_file = a.results / "data" / "eval" / "prompts.jsonl"
    if not prompts_file.exists():
        sys.exit(f"--results {a.results}: no {prompts_file}; run the full tier first "
                 f"(snakemake --cores all --configfile config/toy_full.yaml)")
    prompts = read_prompts(prompts_file)
    folders = {name: a.results / "samples" / name / "images" for name in a.systems}
    n_images = {name: len(list(f.glob("*.png"))) for name, f in folders.items()}
    too_big = [n for n in a.sizes if n > min([len(prompts), *n_images.values()])]
    if too_big:
        sys.exit(f"--sizes {too_big}: above the {len(prompts)} prompts or the images of {n_images}; "
                 f"sample those systems on the whole set (evaluation.subset.full_systems)")
    cache = a.work / "features"
    feats = {"reference": toy.toy_features(a.results / "data" / "eval" / "reference", cache)}
    feats[IDEAL] = toy.toy_features(ideal_renders(prompts, a.ideal_seed, a.work / "ideal"), cache)
    feats.update({name: toy.toy_features(f, cache) for name, f in folders.items()})
    by_size = {}
    for n in sorted(a.sizes):
        ref = feats["reference"][:n]
        combos = len({json.dumps(p["attributes"], sort_keys=True) for p in prompts[:n]})
        radii = kth_neighbour_radii(torch.as_tensor(ref, dtype=torch.float32), a.k)
        by_size[str(n)] = {"combinations": combos, "ref_radius_median": float(radii.median()),
                           "systems": {name: scores(ref, feats[name][:n], a.k) for name in [IDEAL, *a.systems]}}
        print(n, json.dumps(by_size[str(n)]), flush=True)
    rec = {"k": a.k, "sizes": sorted(a.sizes), "systems": a.systems, "by_size": by_size,
           "ideal_stream": IDEAL_STREAM + a.ideal_seed, "feature_net": toy.FEATURE_NET, "argv": sys.argv,
           "machine": platform.platform(), "versions": package_versions(), "seconds": round(time.time() - t0, 1)}
    write_json(a.out.with_suffix(".json"), rec)
    with atomic_file(a.out.with_suffix(".md")) as f:
        f.write(markdown(rec))


if __name__ == "__main__":
    main()
