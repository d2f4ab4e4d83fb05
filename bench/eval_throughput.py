"""Throughput of each evaluation metric on this machine (GPU when present, else CPU).

Measures feature extraction through clean-fid's folder reader (toy Inception at native size, and a
299-px clean-resize pass with a trivially cheap network, i.e. clean-fid's reading and resizing cost),
the Fréchet distance on 2048-d features, precision/recall (k = 3) on N x 2048 features, CLIP score
and HPS on the toy CLIP. Writes reports/bench/eval_throughput.{json,md} with machine and versions.

    python bench/eval_throughput.py [--images 1000] [--features 10000]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sb2bench  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from sb2bench.models import zoo  # noqa: E402
from sb2bench._infra.atomic import atomic_file, write_json  # noqa: E402
from sb2bench.evaluate.score import resolve_device  # noqa: E402
from sb2bench.evaluate.hps_benchmark import folder_hps  # noqa: E402
from sb2bench.evaluate.metrics.clip_score import folder_clip_score  # noqa: E402
from sb2bench.evaluate.metrics.features import load_feature_net  # noqa: E402
from sb2bench.evaluate.metrics.fid import fid_from_features, folder_features  # noqa: E402
from sb2bench.evaluate.metrics.precision_recall import precision_recall  # noqa: E402
from sb2bench._infra.provenance import package_versions  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--features", type=int, default=10000)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "eval_throughput"))
    a = ap.parse_args()
    device = resolve_device("auto")
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(a.images):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:06d}.png")
        prompts = [{"index": i, "caption": "a red circle, photo"} for i in range(a.images)]
        net = load_feature_net("toy:inception-toy", device)
        _, s = timed(lambda: folder_features(folder, net.extractor, native_size=True, device=device))
        rows.append({"metric": "features: toy Inception, native 32 px", "n": a.images, "seconds": s})
        cheap = lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)  # noqa: E731
        _, s = timed(lambda: folder_features(folder, cheap, native_size=False, device=device))
        rows.append({"metric": "clean-fid read + clean resize to 299 (network cost excluded)", "n": a.images,
                     "seconds": s})
        clip = zoo.load_open_clip("toy:clip-toy", device)
        _, s = timed(lambda: folder_clip_score(clip, folder, prompts, device=device))
        rows.append({"metric": "CLIP score, toy CLIP", "n": a.images, "seconds": s})
        _, s = timed(lambda: folder_hps(clip.model, clip.tokenizer, folder, prompts))
        rows.append({"metric": "HPS, toy CLIP stand-in (CPU)", "n": a.images, "seconds": s})
    real = rng.standard_normal((a.features, 2048)).astype(np.float32)
    fake = rng.standard_normal((a.features, 2048)).astype(np.float32) + 0.1
    _, s = timed(lambda: fid_from_features(real, fake))
    rows.append({"metric": "FID from 2048-d features (stats + sqrtm)", "n": a.features, "seconds": s})
    _, s = timed(lambda: precision_recall(real, fake, k=3, device=device))
    rows.append({"metric": "precision/recall k=3, 2048-d", "n": a.features, "seconds": s})
    for r in rows:
        r["seconds"] = round(r["seconds"], 3)
        r["items_per_second"] = round(r["n"] / r["seconds"], 1)
    machine = {"platform": platform.platform(), "python": platform.python_version(), "device": device,
               "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
               "cpu_threads": torch.get_num_threads()}
    out = Path(a.out)
    write_json(out.with_suffix(".json"), {"machine": machine, "versions": package_versions(), "rows": rows,
                                          "command": "python bench/eval_throughput.py " + " ".join(sys.argv[1:])})
    lines = ["# Evaluation throughput", "", f"Machine: {machine}", "",
             "| metric | n | seconds | items/s |", "|---|---:|---:|---:|"]
    lines += [f"| {r['metric']} | {r['n']} | {r['seconds']} | {r['items_per_second']} |" for r in rows]
    lines += ["", f"Rerun: `python bench/eval_throughput.py {' '.join(sys.argv[1:])}`".rstrip()]
    with atomic_file(out.with_suffix(".md")) as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
