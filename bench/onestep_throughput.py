"""One-step generation throughput (text encoder + UNet at t = 999 + VAE decode), images per second.

Compares the official SBv2 ``infer.py`` way -- fp32, one prompt at a time, diffusers' default attention --
with our path: half precision on a GPU (fp16, or --dtype bf16), SDPA attention set explicitly,
channels_last UNet and VAE, batches of 1 and 64, and optionally torch.compile. Same random-weight
SD 2.1-base architecture on both sides (``--size sd21``; ``--size toy`` shrinks it for a CPU).
Writes reports/bench/onestep_throughput.{json,md}.

    python bench/onestep_throughput.py --size toy                 # CPU, seconds
    python bench/onestep_throughput.py --size sd21 --compile      # GPU
"""
from __future__ import annotations

import argparse
import time

import _arch
import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Generator:
    """The models of one path, moved and configured once."""

    def __init__(self, size: str, device: str, dtype: torch.dtype, fast: bool, compile_: bool):
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.device, self.dtype = device, dtype
        self.unet, self.vae = _arch.build_unet(size).eval(), _arch.build_vae(size).eval()
        self.text = _arch.build_text_encoder(size).eval()
        acp = _arch.build_scheduler().alphas_cumprod
        self.t = acp.numel() - 1
        self.alpha, self.sigma = acp[self.t].sqrt().item(), (1 - acp[self.t]).sqrt().item()
        for m in (self.unet, self.vae, self.text):
            m.to(device=device, dtype=dtype)
        if fast:
            self.unet.set_attn_processor(AttnProcessor2_0())
            self.vae.set_attn_processor(AttnProcessor2_0())
            self.unet.to(memory_format=torch.channels_last)
            self.vae.to(memory_format=torch.channels_last)
        self.decode = self.vae.decode
        self.unet_fn = self.unet
        if compile_:
            self.unet_fn = torch.compile(self.unet, mode="max-autotune-no-cudagraphs", fullgraph=False)
            self.decode = torch.compile(self.vae.decode, mode="max-autotune-no-cudagraphs", fullgraph=False)
        c = self.unet.config
        self.latent = (c.in_channels, c.sample_size, c.sample_size)
        self.scaling = self.vae.config.scaling_factor

    @torch.inference_mode()
    def images(self, ids: torch.Tensor) -> torch.Tensor:
        """ids: (B, 77) token ids -> (B, 3, H, W) images in [0, 1] on the device."""
        cond = self.text(ids.to(self.device))[0].to(self.dtype)
        noise = torch.randn((len(ids), *self.latent), device=self.device, dtype=self.dtype)
        tt = torch.full((len(ids),), self.t, device=self.device, dtype=torch.long)
        eps = self.unet_fn(noise, tt, cond).sample
        x0 = (noise - self.sigma * eps) / self.alpha
        return ((self.decode(x0 / self.scaling).sample.float() + 1) / 2).clamp(0, 1)


def measure(gen: Generator, batch: int, n_images: int, warmup: int, vocab: int) -> dict:
    """Images per second over ``n_images`` (whole batches) after ``warmup`` batches."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, 77), generator=g)
    for _ in range(warmup):
        gen.images(ids)
    n_batches = max(1, n_images // batch)
    _arch.sync(gen.device)
    t0 = time.perf_counter()
    for _ in range(n_batches):
        gen.images(ids)
    _arch.sync(gen.device)
    s = time.perf_counter() - t0
    return {"batch": batch, "images": n_batches * batch, "seconds": round(s, 4),
            "images_per_second": round(n_batches * batch / s, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["toy", "sd21"], default="toy")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                    help="our path's precision (auto: fp16 on a GPU, fp32 on the CPU)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--images", type=int, default=None, help="timed images per row (default: toy 64, sd21 256)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed batches before each row")
    ap.add_argument("--compile", action="store_true", help="also time our path under torch.compile")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out-dir", default=str(_arch.ROOT / "reports" / "bench"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    device = _arch.resolve_device(a.device)
    ours = DTYPES[a.dtype] if a.dtype != "auto" else (torch.float16 if device == "cuda" else torch.float32)
    n = a.images or (64 if a.size == "toy" else 256)
    vocab = _arch.SIZES[a.size]["text"]["vocab_size"]
    rows = []

    def run(label: str, gen: Generator, batches: list[int]) -> None:
        for b in batches:
            r = measure(gen, b, max(n, b), a.warmup, vocab)
            attn = type(next(iter(gen.unet.attn_processors.values()))).__name__
            rows.append({"path": label, "dtype": str(gen.dtype).removeprefix("torch."), "attention": attn, **r})
            print(rows[-1], flush=True)

    naive = Generator(a.size, device, torch.float32, fast=False, compile_=False)
    run("naive (infer.py: fp32, batch 1, default attention)", naive, [1])
    del naive
    run("ours (SDPA, channels_last)", Generator(a.size, device, ours, fast=True, compile_=False), a.batches)
    if a.compile:
        run("ours + torch.compile", Generator(a.size, device, ours, fast=True, compile_=True), a.batches)
    base = rows[0]["images_per_second"]
    for r in rows:
        r["speedup_vs_naive"] = round(r["images_per_second"] / base, 2)
    record = {"machine": _arch.machine(device), "size": a.size, "architecture": _arch.SIZES[a.size],
              "rows": rows, "timed_pass": "text encoder (77 tokens) + UNet at t = 999 + VAE decode; PNG excluded"}
    if a.size == "sd21":
        record["sd21_params_m"] = _arch.check_sd21_params()
    table = ["| path | dtype | batch | images timed | images / s | × naive |", "|---|---|---:|---:|---:|---:|"]
    table += [f"| {r['path']} | {r['dtype']} | {r['batch']} | {r['images']} | {r['images_per_second']:.2f} | "
              f"{r['speedup_vs_naive']:.2f} |" for r in rows]
    notes = [f"Size `{a.size}`: " + ("SD 2.1-base architecture (UNet 866 M, VAE 84 M, text encoder 340 M), "
                                     "512 px." if a.size == "sd21" else
                                     "SD 2.1-base block layout at toy width, 16x16 latents -> 128 px images."),
             "Attention processors per row are in the JSON (diffusers' default is already SDPA, "
             "AttnProcessor2_0, on torch >= 2, so the naive row uses it too).",
             "Random weights; both paths compute the same function (up to precision). On the CPU our path "
             "stays fp32 unless --dtype says otherwise, so its gain there is batching, SDPA and channels_last only."]
    _arch.write_report("onestep_throughput", "One-step generation throughput", record, table, notes, a.out_dir)


if __name__ == "__main__":
    main()
