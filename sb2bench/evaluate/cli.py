"""``sb2bench attributes``, ``evaluate``, ``hps-prompts``, ``hps-evaluate``, ``timing``, ``report-timing``: the
command lines of the scoring stage (score.py, metrics/, hps_benchmark.py, timing.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from sb2bench._infra.cli_args import add_runtime_args, json_arg


def cmd_attributes(a: argparse.Namespace) -> None:
    from sb2bench._infra.atomic import write_json
    from sb2bench.evaluate.metrics.attributes import attribute_accuracy

    write_json(a.out, attribute_accuracy(Path(a.images), Path(a.prompts), a.classifier))


def cmd_evaluate(a: argparse.Namespace) -> None:
    from sb2bench.evaluate.score import evaluate

    evaluate(Path(a.images), Path(a.reference), Path(a.prompts), a.protocol, a.models, Path(a.cache), Path(a.out),
             a.classifier, a.device, a.bootstrap, a.images_superset)


def cmd_hps_prompts(a: argparse.Namespace) -> None:
    from sb2bench.evaluate.hps_benchmark import write_style_prompts

    for style in a.styles:
        write_style_prompts(Path(a.out_dir) / f"{style}.jsonl", style, a.n, a.seed,
                            Path(a.benchmark) if a.benchmark else None)


def cmd_hps_evaluate(a: argparse.Namespace) -> None:
    from sb2bench.evaluate.hps_benchmark import evaluate_hps

    evaluate_hps({s: Path(a.images_root) / s for s in a.styles}, {s: Path(f) for s, f in zip(a.styles, a.prompts)},
                 a.protocol, a.version, a.model, a.checkpoint, Path(a.out))


def cmd_timing(a: argparse.Namespace) -> None:
    from sb2bench.sample.generate import SystemSpec
    from sb2bench.evaluate.timing import time_system

    time_system(SystemSpec.from_dict(a.system), a.out, warmup=a.warmup, runs=a.runs, repeats=a.repeats,
                device=a.device, dtype=a.dtype, threads=a.threads, prompt=a.prompt)


def cmd_report_timing(a: argparse.Namespace) -> None:
    from sb2bench.evaluate.timing import write_timing_table

    write_timing_table(a.systems, a.out, a.title)


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("attributes", help="toy attribute accuracy of an image folder (the reference renders; "
                                          "`evaluate --classifier` scores a system's samples)")
    s.add_argument("--images", required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--classifier", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_attributes)

    s = sub.add_parser("evaluate", help="score a system's images under a protocol (FID, P/R, CLIP, ...)")
    s.add_argument("--images", required=True)
    s.add_argument("--reference", required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--protocol", required=True)
    s.add_argument("--models", type=json_arg, required=True, help="feature_net and clip specs")
    s.add_argument("--classifier", default=None, help="toy attribute classifier spec: also scores attribute accuracy "
                                                      "(attributes.json written beside --out)")
    s.add_argument("--cache", required=True, help="feature cache folder (content-keyed)")
    s.add_argument("--images-superset", action="store_true",
                   help="--images holds a larger prefix-stable set's samples (evaluation.subset's whole-set systems); "
                        "score only those of --prompts")
    add_runtime_args(s, device="auto")
    s.add_argument("--bootstrap", type=json_arg, default=None, help='{"n_boot", "level", "seed", "method"} (n_boot 0: off); per_image.npz is written beside --out')
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("hps-prompts", help="the HPS benchmark prompt sets (toy: style-forced prompts)")
    s.add_argument("--styles", nargs="+", required=True)
    s.add_argument("--n", type=int, default=None, help="prompts per style (default: all / toy 100)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--benchmark", default=None, help="folder of hpsv2 benchmark JSON files (real world)")
    s.add_argument("--out-dir", required=True, help="writes <out-dir>/<style>.jsonl")
    s.set_defaults(func=cmd_hps_prompts)

    s = sub.add_parser("hps-evaluate", help="HPSv2 per style and averaged for one system")
    s.add_argument("--styles", nargs="+", required=True)
    s.add_argument("--images-root", required=True, help="folder with one image folder per style")
    s.add_argument("--prompts", nargs="+", required=True, help="one prompt file per style, same order")
    s.add_argument("--protocol", required=True)
    s.add_argument("--version", default="v2.1")
    s.add_argument("--model", required=True, help="open_clip spec or architecture name (ViT-H-14)")
    s.add_argument("--checkpoint", default=None, help="folder holding HPS_v2*_compressed.pt")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_hps_evaluate)

    s = sub.add_parser("timing", help="SBv2 Table 8 protocol: seconds per image of one system (batch 1)")
    s.add_argument("--system", type=json_arg, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--warmup", type=int, default=5)
    s.add_argument("--runs", type=int, default=50)
    s.add_argument("--repeats", type=int, default=10)
    add_runtime_args(s, device="auto", dtype="auto", checked=False)  # resolve_runtime checks them (auto dtype: fp16 on CUDA)
    add_runtime_args(s, threads=None)  # after --device/--dtype, as the flags have always been listed
    s.add_argument("--prompt", default=None)
    s.set_defaults(func=cmd_timing)

    s = sub.add_parser("report-timing", help="table of seconds per image per system (SBv2 Table 8 column)")
    s.add_argument("--systems", type=json_arg, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--title", default="Inference time")
    s.set_defaults(func=cmd_report_timing)
