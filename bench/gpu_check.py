"""Pieces of bench/gpu_check.sh that no other bench covers (run through that script, not by hand):

  pipeline   a random-weight StableDiffusionPipeline folder of SD 2.1-base size (``--size sd21``) or the
             toy-width layout (``--size toy``), so the real trainer and the Table 8 timing run with no hub weights
  eval-pass  the COCO-30K-size evaluation pass on N random 256-px images (the sbv2 protocol's resized size):
             clean-fid features through a random-weight InceptionV3 (pool3, 2048-d; the FLOPs of clean-fid's),
             FID, precision/recall (k = 3) and CLIP score with a random-weight open_clip ViT-g-14
  mfu        the GPU's measured bf16 matmul peak and the model FLOP utilisation of bench/vsd_step.py's rows,
             from the measured FLOPs per image of /work/shared/reference/flops.md (SD 2.1-base size only)
  summary    reports/bench/gpu_check.{json,md}: each stage's status, seconds and headline figures, with the GPU name

Random weights: speed and memory do not depend on their values.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _arch
import numpy as np
import torch

# Measured FLOPs per image of one VSD step at SD 2.1-base size (FlopCounterMode; /work/shared/reference/flops.md §3):
# scheme A (full-FT student; our full variants and the SBv1 loops) 7.371 TFLOP; scheme B (LoRA student) without
# its TinyVAE + CLIP terms, which bench/vsd_step.py does not run: 7.191 - 0.283 - 0.018 = 6.891 TFLOP.
VSD_TFLOP_PER_IMAGE = {"full": 7.371, "lora": 6.891}


def vsd_tflop(variant: str) -> float:
    return VSD_TFLOP_PER_IMAGE["lora" if "lora" in variant else "full"]


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def cmd_pipeline(a: argparse.Namespace) -> None:
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    from sb2bench.models import zoo

    tokenizer = CLIPTokenizer.from_pretrained(zoo.resolve("toy:sd-toy").path / "tokenizer")
    pipe = StableDiffusionPipeline(vae=_arch.build_vae(a.size), text_encoder=_arch.build_text_encoder(a.size),
                                   tokenizer=tokenizer, unet=_arch.build_unet(a.size),
                                   scheduler=DDIMScheduler(**_arch.SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(a.out)
    print(f"wrote a random-weight {a.size} pipeline to {a.out}")


def _write_images(folder: Path, n: int, size: int) -> None:
    from PIL import Image

    def one(i: int) -> None:
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:06d}.png")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))


def _timed(rows: list, name: str, n: int, fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    s = time.perf_counter() - t0
    rows.append({"stage": name, "n": n, "seconds": round(s, 2), "items_per_second": round(n / s, 1)})
    print(f"{name}: {n} in {s:.1f} s", flush=True)
    return out


def cmd_eval_pass(a: argparse.Namespace) -> None:
    import tempfile

    import open_clip
    from torchvision.models import inception_v3

    from sb2bench.evaluate.metrics.clip_score import folder_clip_score
    from sb2bench.evaluate.metrics.features import load_feature_net
    from sb2bench.evaluate.metrics.fid import fid_from_features, folder_features
    from sb2bench.evaluate.metrics.precision_recall import precision_recall
    from sb2bench.models.zoo import OpenClip, load_open_clip

    dev = _device()
    torch.manual_seed(0)
    if a.size == "sd21":  # the protocol's networks, random weights
        net = inception_v3(weights=None, aux_logits=False, init_weights=False)
        net.fc = torch.nn.Identity()  # pool3: 2048-d, as clean-fid's Inception
        net = net.eval().to(dev)
        extractor, native, feature_name = (lambda x: net(x / 255.0)), False, "clean-fid resize 299 + InceptionV3"
        arch = "ViT-g-14"
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, device=dev)
        clip = OpenClip(model.eval(), preprocess, open_clip.get_tokenizer(arch), f"{arch} (random weights)")
    else:  # the toy world's stand-ins: the same code path at CPU cost
        toy = load_feature_net("toy:inception-toy", dev)
        extractor, native, feature_name, arch = toy.extractor, True, "toy Inception, native size", "toy CLIP"
        clip = load_open_clip("toy:clip-toy", dev)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        folder = Path(tmp)
        _timed(rows, "write random 256-px PNGs (setup, 16 threads)", a.images, lambda: _write_images(folder, a.images, 256))
        gen = _timed(rows, f"clean-fid read + features ({feature_name})", a.images,
                     lambda: folder_features(folder, extractor, device=dev, batch_size=a.batch, native_size=native))
        prompts = [{"index": i, "caption": "a photo of a cat sitting on a red sofa"} for i in range(a.images)]
        _timed(rows, f"CLIP score, {arch}", a.images,
               lambda: folder_clip_score(clip, folder, prompts, prefix="A photo depicts ", batch_size=a.batch, device=dev))
    ref = np.random.default_rng(1).standard_normal(gen.shape).astype(np.float32)
    _timed(rows, f"FID from {gen.shape[1]}-d features", a.images, lambda: fid_from_features(ref, gen))
    _timed(rows, f"precision/recall k=3, {gen.shape[1]}-d", a.images, lambda: precision_recall(ref, gen, k=3, device=dev))
    total = sum(r["seconds"] for r in rows[1:])
    record = {"machine": _arch.machine(dev), "images": a.images, "rows": rows, "size": a.size,
              "scoring_seconds": round(total, 1)}
    table = ["| stage | n | seconds | items/s |", "|---|---:|---:|---:|"]
    table += [f"| {r['stage']} | {r['n']} | {r['seconds']} | {r['items_per_second']} |" for r in rows]
    notes = [f"Scoring one system's {a.images} images (setup excluded): {total:.1f} s. " + (
        "Random-weight networks of the protocol's sizes (InceptionV3 pool3 2048-d, open_clip ViT-g-14)" if a.size == "sd21"
        else "Toy stand-ins (toy Inception, toy CLIP): checks the code path, not the cost") +
        "; the images are 256-px files, the size the sbv2 protocol scores."]
    _arch.write_report("gpu_check_eval_pass", "COCO-30K-size evaluation pass", record, table, notes, a.out_dir,
                       script="bench/gpu_check.py")


def matmul_peak(dev: str, n: int) -> float:
    """Measured dense matmul rate (TFLOP/s): bf16 on a GPU, fp32 on a CPU."""
    dt = torch.bfloat16 if dev == "cuda" else torch.float32
    x, y = torch.randn(n, n, device=dev, dtype=dt), torch.randn(n, n, device=dev, dtype=dt)
    for _ in range(3):
        x @ y
    reps = 20 if dev == "cuda" else 3
    if dev == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        x @ y
    if dev == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def cmd_mfu(a: argparse.Namespace) -> None:
    dev = _device()
    peak = matmul_peak(dev, 8192 if dev == "cuda" else 1024)
    vsd = json.loads(Path(a.vsd).read_text())
    rows = []
    for r in vsd.get("rows", []):
        tflop = vsd_tflop(r["variant"]) if a.size == "sd21" else None
        achieved = tflop * r["images_per_second"] if tflop else None
        rows.append({"variant": r.get("variant"), "images_per_second": r.get("images_per_second"),
                     "peak_gpu_memory_gib": r.get("peak_gpu_memory_gib"), "tflop_per_image": tflop,
                     "achieved_tflops": round(achieved, 1) if achieved else None,
                     "mfu_percent": round(100 * achieved / peak, 1) if achieved else None})
    record = {"machine": _arch.machine(dev), "measured_matmul_peak_tflops": float(f"{peak:.4g}"), "rows": rows,
              "vsd_report": a.vsd}
    table = ["| variant | images / s | peak memory (GiB) | TFLOP / image | achieved TFLOP/s | MFU (%) |",
             "|---|---:|---:|---:|---:|---:|"]
    table += [f"| {r['variant']} | {r['images_per_second']} | {r['peak_gpu_memory_gib']} | {r['tflop_per_image']} | "
              f"{r['achieved_tflops']} | {r['mfu_percent']} |" for r in rows]
    notes = [f"MFU = FLOPs per image (measured with FlopCounterMode at SD 2.1-base size, "
             f"/work/shared/reference/flops.md §3) x images/s / this machine's measured "
             f"{'bf16 8192³' if dev == 'cuda' else 'fp32 1024³'} matmul rate ({peak:.3g} TFLOP/s); "
             f"none at toy size (those FLOPs are SD 2.1-base's)."]
    _arch.write_report("gpu_check_mfu", "VSD step model FLOP utilisation", record, table, notes, a.out_dir,
                       script="bench/gpu_check.py")


def cmd_summary(a: argparse.Namespace) -> None:
    out = Path(a.out_dir)
    stages = [line.split("\t") for line in Path(a.stages).read_text().splitlines() if line.strip()]
    dev = _device()
    m = _arch.machine(dev)
    gpu = m.get("gpu") or f"no GPU ({m['cpu']})"
    rows = [{"stage": s, "status": st, "seconds": float(sec), "cpu_seconds": float(cpu), "log": log}
            for s, st, sec, cpu, log in stages]
    reports = sorted(p.name for p in out.glob("*.md") if p.name != "gpu_check.md")
    record = {"gpu": gpu, "machine": m, "mode": a.mode, "stages": rows, "reports": reports,
              "total_seconds": round(sum(r["seconds"] for r in rows), 1),
              "total_cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 1)}
    _arch.write_json(out / "gpu_check.json", record)
    lines = [f"# GPU check ({a.mode})", "", f"GPU: **{gpu}**; torch {torch.__version__}.", "",
             "| stage | status | seconds | CPU seconds | log |", "|---|---|---:|---:|---|"]
    lines += [f"| {r['stage']} | {r['status']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['log']} |" for r in rows]
    lanes = (" The cpu-toy run has two lanes of stages at once (one per core), so the stages' seconds overlap "
             "and their sum exceeds the run's wall time." if a.mode == "cpu-toy" else "")
    lines += ["", f"Total {record['total_seconds']:.1f} s wall, {record['total_cpu_seconds']:.1f} s of CPU (user + "
              f"system; wall above CPU means waiting: the GPU, or other processes on a shared CPU).{lanes} Reports: "
              + ", ".join(reports), "",
              f"Rerun: `bash bench/gpu_check.sh{' --cpu-toy' if a.mode == 'cpu-toy' else ''}`"]
    with _arch.atomic_file(out / "gpu_check.md") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    failed = [r["stage"] for r in rows if r["status"] != "ok"]
    if failed:
        sys.exit(f"stages not ok: {failed} (see their logs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("pipeline")
    s.add_argument("--size", choices=["toy", "sd21"], required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_pipeline)
    s = sub.add_parser("eval-pass")
    s.add_argument("--size", choices=["toy", "sd21"], required=True)
    s.add_argument("--images", type=int, default=30000)
    s.add_argument("--batch", type=int, default=250)
    s.add_argument("--work", default=None, help="folder for the temporary images (default: the system's temp)")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_eval_pass)
    s = sub.add_parser("mfu")
    s.add_argument("--size", choices=["toy", "sd21"], required=True)
    s.add_argument("--vsd", required=True, help="bench/vsd_step.py's JSON report")
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_mfu)
    s = sub.add_parser("summary")
    s.add_argument("--stages", required=True, help="TSV: stage, status, seconds, CPU seconds, log")
    s.add_argument("--mode", required=True)
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_summary)
    a = ap.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
