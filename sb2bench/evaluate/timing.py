"""Inference time per image under SBv2's Table 8 protocol [SBv2 §7.5].

The paper times text encoder + UNet + VAE decode at batch 1 in fp16 on one A100: 5 warm-up passes,
then 50 inferences, repeated 10 times and averaged. Here each repeat is (warm-up passes, then the
timed inferences, synchronised at both ends); the value is the mean over repeats of seconds per image,
± their standard deviation. The pass is the sampler's own code (``sample_latents`` then the VAE
decode), so the time is that of the images the suite scores, minus PNG encoding. On the CPU it runs
in fp32 (half-precision CPU kernels are slow or missing) and says so.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from sb2bench._infra.atomic import atomic_file, write_json
from sb2bench._infra.provenance import record
from sb2bench.sample.generate import SystemSpec, load_system, resolve_runtime, runtime_record, sample_latents

PROMPT = "a photo of a red circle on a white background"
PROTOCOL = {"source": "[SBv2 §7.5] / Table 8", "batch_size": 1,
            "timed": "text encoder + UNet (all steps, CFG batched, scheduler) + VAE decode; PNG encoding excluded",
            "repeat": "warm-up passes, then the timed inferences, synchronised before and after",
            "statistic": "mean and sample standard deviation over repeats of (repeat seconds / runs)"}


def resolve_dtype(device: str, dtype: str) -> tuple[str, torch.dtype]:
    """auto: fp16 on CUDA as in the paper, fp32 on the CPU."""
    dev, _ = resolve_runtime(device, "float32")
    if dtype == "auto":
        dtype = "float16" if dev == "cuda" else "float32"
    return resolve_runtime(dev, dtype)


def hardware(device: str) -> dict:
    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(),
                    cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    return info


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def _infer(system, caption: str) -> torch.Tensor:
    lat = sample_latents(system, [caption], [0], 0)
    return system.vae.decode(lat.to(system.dtype) / system.vae.config.scaling_factor).sample


def unet_evaluations(spec: SystemSpec) -> int:
    """UNet forward passes per image (a CFG pair counts as two, as in NFE-style comparisons)."""
    return 1 if spec.kind == "onestep" else spec.steps * (1 if spec.cfg == 1.0 else 2)


def time_system(spec: SystemSpec, out: str | Path, warmup: int = 5, runs: int = 50, repeats: int = 10,
                device: str = "auto", dtype: str = "auto", threads: int | None = None,
                prompt: str | None = None) -> dict:
    """Time one system at batch 1 and write ``out`` (JSON); returns the record."""
    if min(runs, repeats) < 1 or warmup < 0:
        raise ValueError(f"timing: runs ({runs}) and repeats ({repeats}) must be >= 1 and warmup ({warmup}) >= 0; "
                         f"see config key timing")
    if threads:
        torch.set_num_threads(threads)
    dev, dt = resolve_dtype(device, dtype)
    t_load = time.perf_counter()
    system = load_system(spec, dev, dt)
    load_s = time.perf_counter() - t_load
    caption = prompt or PROMPT
    per_image = []
    for _ in range(repeats):
        for _ in range(warmup):
            _infer(system, caption)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(runs):
            _infer(system, caption)
        _sync(dev)
        per_image.append((time.perf_counter() - t0) / runs)
    mean = statistics.fmean(per_image)
    std = statistics.stdev(per_image) if len(per_image) > 1 else 0.0
    result = record(system=asdict(spec), provenance=system.provenance, runtime=runtime_record(system),
                    hardware=hardware(dev), protocol={**PROTOCOL, "warmup": warmup, "runs": runs, "repeats": repeats,
                                                      "prompt": caption},
                    unet_evaluations=unet_evaluations(spec), seconds_per_image=mean, seconds_per_image_std=std,
                    images_per_second=1.0 / mean, repeats_seconds_per_image=per_image,
                    model_load_seconds=round(load_s, 3))
    write_json(out, result)
    return result


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def write_timing_table(spec: dict, out_md: str | Path, title: str = "Inference time") -> str:
    """``spec``: {"systems": [{"label", "file", "paper_row"?}], "paper_table"?}; paper seconds shown beside ours."""
    from sb2bench.paper.numbers import paper_table

    paper = paper_table(spec.get("paper_table", "sbv2_t8"))
    rows = [(s, json.loads(Path(s["file"]).read_text())) for s in spec["systems"]]
    with_paper = any(s.get("paper_row") for s in spec["systems"])
    head = "| system | UNet evals | device, dtype | seconds / image (mean ± std) | images / s |"
    head += " paper (A100, fp16) |" if with_paper else ""
    lines = [f"# {title}", "",
             "SBv2 Table 8 protocol [SBv2 §7.5]: batch 1, text encoder + UNet + VAE decode, warm-up passes then "
             "timed inferences, repeated; mean ± standard deviation over repeats.", "", head,
             "|---|---:|---|---:|---:|" + ("---:|" if with_paper else "")]
    machines = {}
    for s, r in rows:
        rt, p = r["runtime"], r["protocol"]
        cell = f"{_fmt(r['seconds_per_image'])} ± {_fmt(r['seconds_per_image_std'])}"
        line = (f"| {s['label']} | {r['unet_evaluations']} | {rt['device']}, {rt['dtype']} | {cell} | "
                f"{r['images_per_second']:.1f} |")
        if with_paper:
            v = paper.value(s["paper_row"], "inference_s") if s.get("paper_row") else None
            line += f" {v:.2f} s |" if v is not None else " – |"
        lines.append(line)
        hw = r["hardware"]
        machine = hw.get("gpu") or hw.get("cpu")
        machines.setdefault((machine, hw["torch_threads"], p["warmup"], p["runs"], p["repeats"]), []).append(s["label"])
    lines.append("")
    for (machine, threads, w, n, k), labels in machines.items():
        lines.append(f"- {', '.join(labels)}: {machine} ({threads} torch threads), {w} warm-up + {n} timed "
                     f"inferences x {k} repeats.")
    versions = rows[0][1]["versions"] if rows else {}
    lines += ["", f"torch {versions.get('torch')}, diffusers {versions.get('diffusers')}. Per-system records: "
                  "`results/<world>/timing/<system>.json` (hardware, versions, every repeat)."]
    if with_paper:
        lines.append("The paper's column is SBv2 Table 8 (one A100 40GB, fp16); times on other hardware are not "
                     "comparable in absolute terms, only in ratio.")
    text = "\n".join(lines) + "\n"
    with atomic_file(out_md) as f:
        f.write(text)
    return text
