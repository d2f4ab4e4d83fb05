"""``sb2bench <stage>``: the command every Snakemake rule calls."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def cmd_toy_train(a: argparse.Namespace) -> None:
    from sb2bench.toyworld.hub import train_component

    path = train_component(a.component, Path(a.hub), a.params, Path(a.cache) if a.cache else None)
    print(f"wrote {path}")


def cmd_hub_provenance(a: argparse.Namespace) -> None:
    from sb2bench.toyworld.hub import write_provenance

    write_provenance(Path(a.hub), Path(a.out))


def cmd_hub_ship(a: argparse.Namespace) -> None:
    from sb2bench.toyworld.hub import ship

    ship(Path(a.hub), Path(a.dest))


def cmd_config_doc(a: argparse.Namespace) -> None:
    from sb2bench.plan.config import schema_table

    print(schema_table())


def cmd_validate_config(a: argparse.Namespace) -> None:
    import yaml

    from sb2bench.plan.config import load_config

    print(yaml.safe_dump(load_config(*a.configs), sort_keys=False))


def cmd_toy_eval_set(a: argparse.Namespace) -> None:
    from sb2bench.toyworld.prompt_sets import write_eval_set

    write_eval_set(a.seed, a.n, Path(a.prompts), Path(a.reference))


def cmd_toy_train_prompts(a: argparse.Namespace) -> None:
    from sb2bench.data.prompts import write_prompts
    from sb2bench.toyworld.prompt_sets import training_prompts

    write_prompts(a.out, training_prompts(a.seed, a.n))


def cmd_sample(a: argparse.Namespace) -> None:
    from sb2bench.data.prompts import read_prompts
    from sb2bench.sample.generate import SystemSpec, generate_shard

    spec = SystemSpec.from_dict(a.system)
    prompts = read_prompts(a.prompts)
    generate_shard(spec, prompts, Path(a.out), a.shard, a.n_shards, a.batch_size, a.threads, a.device, a.dtype)


def cmd_sample_sets(a: argparse.Namespace) -> None:
    from sb2bench.data.prompts import read_prompts
    from sb2bench.sample.generate import SystemSpec, generate_sets

    if len(a.names) != len(a.prompts):
        raise SystemExit(f"--names ({len(a.names)}) and --prompts ({len(a.prompts)}) must pair up")
    sets = {n: read_prompts(f) for n, f in zip(a.names, a.prompts)}
    generate_sets(SystemSpec.from_dict(a.system), sets, Path(a.out), a.batch_size, a.threads, a.device, a.dtype)


def cmd_gather(a: argparse.Namespace) -> None:
    from sb2bench.sample.generate import gather_shards

    gather_shards([Path(d) for d in a.shards], Path(a.out), a.expected)


def cmd_attributes(a: argparse.Namespace) -> None:
    from sb2bench._infra.atomic import write_json
    from sb2bench.evaluate.metrics.attributes import attribute_accuracy

    write_json(a.out, attribute_accuracy(Path(a.images), Path(a.prompts), a.classifier))


def cmd_evaluate(a: argparse.Namespace) -> None:
    from sb2bench.evaluate.score import evaluate

    evaluate(Path(a.images), Path(a.reference), Path(a.prompts), a.protocol, a.models, Path(a.cache), Path(a.out),
             Path(a.attributes) if a.attributes else None, a.device, a.bootstrap)


def cmd_coco_prompts(a: argparse.Namespace) -> None:
    from sb2bench.data import coco
    from sb2bench.data.prompts import write_prompts

    if a.dataset_json:
        rows = coco.prompts_from_dataset_json(Path(a.dataset_json), a.n)
    elif a.caption_list:
        rows = coco.prompts_from_caption_list(Path(a.caption_list), a.n)
    else:
        rows = coco.prompts_from_captions(Path(a.captions), a.n, a.seed)
    write_prompts(a.out, rows)


def cmd_coco_reference(a: argparse.Namespace) -> None:
    from sb2bench.data.coco import build_reference

    build_reference(Path(a.images), Path(a.out), a.size, a.expected, a.threads)


def cmd_coco_download(a: argparse.Namespace) -> None:
    from sb2bench.data.download import fetch_and_extract

    for item in a.files["files"]:
        fetch_and_extract(item["url"], item["sha256"], Path(a.root), Path(a.root) / "downloads")


def cmd_protocol_resize(a: argparse.Namespace) -> None:
    import shutil

    from sb2bench.data.coco import resize_folder
    from sb2bench.data.prompts import read_prompts

    names = [f"{p['index']:06d}.png" for p in read_prompts(a.prompts)]
    out = resize_folder([Path(a.images) / n for n in names], Path(a.out), a.size, a.threads, names)
    if (Path(a.images) / "manifest.json").exists():
        shutil.copy(Path(a.images) / "manifest.json", out / "manifest.json")


def cmd_hps_prompts(a: argparse.Namespace) -> None:
    from sb2bench.evaluate.hps_benchmark import write_style_prompts

    for style in a.styles:
        write_style_prompts(Path(a.out_dir) / f"{style}.jsonl", style, a.n, a.seed,
                            Path(a.benchmark) if a.benchmark else None)


def cmd_hps_evaluate(a: argparse.Namespace) -> None:
    from sb2bench.evaluate.hps_benchmark import evaluate_hps

    evaluate_hps({s: Path(a.images_root) / s for s in a.styles}, {s: Path(f) for s, f in zip(a.styles, a.prompts)},
                 a.protocol, a.version, a.model, a.checkpoint, Path(a.out))


def cmd_report_eval(a: argparse.Namespace) -> None:
    from sb2bench.report.tables import write_eval_table

    write_eval_table(a.systems["systems"], Path(a.out_md), Path(a.out_csv), a.title)


def cmd_merge(a: argparse.Namespace) -> None:
    from sb2bench.merge.interpolate import merge_unets

    merge_unets(a.a, a.b, a.lam, Path(a.out))


def cmd_report_sweep(a: argparse.Namespace) -> None:
    from sb2bench.report.sweeps import write_sweep

    write_sweep(a.sweep["label"], a.sweep["points"], Path(a.out_prefix))


def cmd_report_table(a: argparse.Namespace) -> None:
    from sb2bench.report.result_tables import write_result_table

    write_result_table(a.table, a.metrics, a.world, Path(a.out_dir))


def cmd_report_teacher(a: argparse.Namespace) -> None:
    from sb2bench.report.teacher import write_teacher_report

    write_teacher_report(a.systems["systems"], Path(a.prompts), Path(a.out_md), Path(a.out_png),
                         a.grid_prompts, a.title)


def cmd_gpu_run(a: argparse.Namespace) -> None:
    from sb2bench._infra.gpu_slots import GpuSlotError, run_on_gpus

    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    try:
        run_on_gpus(cmd, a.gpus, Path(a.lock_dir) if a.lock_dir else None, a.poll, a.timeout)
    except GpuSlotError as exc:
        raise ValueError(str(exc)) from exc


def cmd_timing(a: argparse.Namespace) -> None:
    from sb2bench.sample.generate import SystemSpec
    from sb2bench.evaluate.timing import time_system

    time_system(SystemSpec.from_dict(a.system), a.out, warmup=a.warmup, runs=a.runs, repeats=a.repeats,
                device=a.device, dtype=a.dtype, threads=a.threads, prompt=a.prompt)


def cmd_report_timing(a: argparse.Namespace) -> None:
    from sb2bench.evaluate.timing import write_timing_table

    write_timing_table(a.systems, a.out, a.title)


def cmd_report_trade_off(a: argparse.Namespace) -> None:
    from sb2bench.report.trade_off import write_trade_off

    write_trade_off(a.systems.get("curve", []), a.systems.get("points", []), Path(a.out_prefix), a.title)


def cmd_report_loss_curves(a: argparse.Namespace) -> None:
    from sb2bench.report.loss_curves import write_loss_curves

    print("panels:", ", ".join(write_loss_curves(a.runs["runs"], Path(a.out_prefix), a.title)))


def cmd_report_qualitative(a: argparse.Namespace) -> None:
    from sb2bench.report.qualitative import write_qualitative

    write_qualitative(a.systems["systems"], Path(a.prompts), a.indices, Path(a.out_prefix), a.title)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sb2bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("toy-train", help="train one component of the toy hub")
    s.add_argument("component")
    s.add_argument("--hub", required=True, help="hub folder (components read and written here)")
    s.add_argument("--params", type=_json_arg, required=True, help="training parameters as JSON")
    s.add_argument("--cache", default=None, help="folder for cached renders")
    s.set_defaults(func=cmd_toy_train)

    s = sub.add_parser("config-doc", help="print the table of every config key (from the schema)")
    s.set_defaults(func=cmd_config_doc)

    s = sub.add_parser("validate-config", help="validate config files and print them with defaults filled")
    s.add_argument("configs", nargs="+")
    s.set_defaults(func=cmd_validate_config)

    s = sub.add_parser("hub-provenance", help="summarise how the toy hub was trained")
    s.add_argument("--hub", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_hub_provenance)

    s = sub.add_parser("hub-ship", help="copy a retrained toy hub into the package")
    s.add_argument("--hub", required=True)
    s.add_argument("--dest", required=True)
    s.set_defaults(func=cmd_hub_ship)

    s = sub.add_parser("toy-eval-set", help="write the toy evaluation prompts and reference images")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--reference", required=True)
    s.set_defaults(func=cmd_toy_eval_set)

    s = sub.add_parser("toy-train-prompts", help="write the first N prompts of the toy training stream")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_toy_train_prompts)

    s = sub.add_parser("sample", help="generate one shard of images for a system")
    s.add_argument("--system", type=_json_arg, required=True, help="system spec as JSON")
    s.add_argument("--prompts", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--shard", type=int, default=0)
    s.add_argument("--n-shards", type=int, default=1)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    s.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("sample-sets", help="generate several prompt sets (HPS styles) with one model load")
    s.add_argument("--system", type=_json_arg, required=True, help="system spec as JSON")
    s.add_argument("--names", nargs="+", required=True)
    s.add_argument("--prompts", nargs="+", required=True, help="one prompt file per name, same order")
    s.add_argument("--out", required=True)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    s.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    s.set_defaults(func=cmd_sample_sets)

    s = sub.add_parser("gather", help="merge shard folders into one image folder")
    s.add_argument("--shards", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--expected", type=int, default=None)
    s.set_defaults(func=cmd_gather)

    s = sub.add_parser("attributes", help="toy attribute accuracy of an image folder")
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
    s.add_argument("--models", type=_json_arg, required=True, help="feature_net and clip specs")
    s.add_argument("--attributes", default=None, help="attribute-accuracy JSON of the same images (toy)")
    s.add_argument("--cache", required=True, help="feature cache folder (content-keyed)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--bootstrap", type=_json_arg, default=None, help='{"n_boot", "level", "seed"} (n_boot 0: off)')
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("coco-prompts", help="the COCO-2014 prompt list of the sbv2 / dmd2 protocols")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset-json", help="SBv2 dataset.json: its first N entries")
    src.add_argument("--caption-list", help="a caption list (one per line or JSON Lines): its first N")
    src.add_argument("--captions", help="captions_val2014.json: N images, one caption each, seeded")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=2014)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_coco_prompts)

    s = sub.add_parser("coco-reference", help="protocol-resize every val2014 image once (the reference set)")
    s.add_argument("--images", required=True, help="the val2014 folder")
    s.add_argument("--out", required=True)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--expected", type=int, default=None, help="required image count (40504)")
    s.add_argument("--threads", type=int, default=4)
    s.set_defaults(func=cmd_coco_reference)

    s = sub.add_parser("coco-download", help="download and unpack COCO archives (checksum-verified, resumable)")
    s.add_argument("--files", type=_json_arg, required=True, help='{"files": [{"url", "sha256"}, ...]}')
    s.add_argument("--root", required=True)
    s.set_defaults(func=cmd_coco_download)

    s = sub.add_parser("protocol-resize", help="protocol-resize a system's images (centre crop, LANCZOS)")
    s.add_argument("--images", required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--threads", type=int, default=4)
    s.set_defaults(func=cmd_protocol_resize)

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

    s = sub.add_parser("report-eval", help="table of every system's metrics")
    s.add_argument("--systems", type=_json_arg, required=True)
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-csv", required=True)
    s.add_argument("--title", default="Evaluation")
    s.set_defaults(func=cmd_report_eval)

    s = sub.add_parser("merge", help="theta = lambda A + (1 - lambda) B of two UNets (LoRA fused first)")
    s.add_argument("--a", required=True)
    s.add_argument("--b", required=True)
    s.add_argument("--lam", type=float, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("report-sweep", help="metrics against lambda of one merge sweep (figure + table)")
    s.add_argument("--sweep", type=_json_arg, required=True, help='{"label", "points": [{"lambda", "metrics"}]}')
    s.add_argument("--out-prefix", required=True, help="writes <prefix>.png, .svg, .md, .csv")
    s.set_defaults(func=cmd_report_sweep)

    s = sub.add_parser("report-table", help="a config-declared table: ours beside the paper's numbers")
    s.add_argument("--table", type=_json_arg, required=True, help="the table's config entry as JSON")
    s.add_argument("--metrics", type=_json_arg, required=True, help='{"system": [metric files], ...}')
    s.add_argument("--world", required=True, choices=["toy", "real"])
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_report_table)

    s = sub.add_parser("report-teacher", help="write the teacher report (grid + accuracy table)")
    s.add_argument("--systems", type=_json_arg, required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-png", required=True)
    s.add_argument("--grid-prompts", type=int, default=8)
    s.add_argument("--title", default="Toy teacher")
    s.set_defaults(func=cmd_report_teacher)

    s = sub.add_parser("gpu-run", help="run a command on a free local GPU slot (CUDA_VISIBLE_DEVICES via lock files)")
    s.add_argument("--gpus", type=int, default=1, help="GPU slots the command needs (0: run it unchanged)")
    s.add_argument("--lock-dir", default=None, help="lock folder (default $SB2BENCH_GPU_LOCK_DIR or a per-user temp folder)")
    s.add_argument("--poll", type=float, default=1.0, help="seconds between attempts while every slot is taken")
    s.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (default: wait)")
    s.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    s.set_defaults(func=cmd_gpu_run)

    s = sub.add_parser("timing", help="SBv2 Table 8 protocol: seconds per image of one system (batch 1)")
    s.add_argument("--system", type=_json_arg, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--warmup", type=int, default=5)
    s.add_argument("--runs", type=int, default=50)
    s.add_argument("--repeats", type=int, default=10)
    s.add_argument("--device", default="auto")
    s.add_argument("--dtype", default="auto")
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--prompt", default=None)
    s.set_defaults(func=cmd_timing)

    s = sub.add_parser("report-timing", help="table of seconds per image per system (SBv2 Table 8 column)")
    s.add_argument("--systems", type=_json_arg, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--title", default="Inference time")
    s.set_defaults(func=cmd_report_timing)

    s = sub.add_parser("report-trade-off", help="FID against CLIP score: a curve of systems and labelled points")
    s.add_argument("--systems", type=_json_arg, required=True,
                   help='{"curve": [{"name", "label", "metrics"}], "points": [...]} (metrics: a metrics.json)')
    s.add_argument("--out-prefix", required=True, help="writes <prefix>.png, .svg, .csv")
    s.add_argument("--title", default="FID vs CLIP score")
    s.set_defaults(func=cmd_report_trade_off)

    s = sub.add_parser("report-loss-curves", help="training losses against step, one panel per logged loss")
    s.add_argument("--runs", type=_json_arg, required=True,
                   help='{"runs": [{"name", "label", "log"}]} (log: a log.csv)')
    s.add_argument("--out-prefix", required=True, help="writes <prefix>.png, .svg")
    s.add_argument("--title", default="Training losses")
    s.set_defaults(func=cmd_report_loss_curves)

    s = sub.add_parser("report-qualitative", help="grid of the same prompts and seeds across systems")
    s.add_argument("--systems", type=_json_arg, required=True,
                   help='{"systems": [{"name", "label", "images"}]} (images: folder of {index:06d}.png)')
    s.add_argument("--prompts", required=True, help="the prompt set the images were sampled on")
    s.add_argument("--indices", type=int, nargs="+", required=True, help="prompt indices (columns), in order")
    s.add_argument("--out-prefix", required=True, help="writes <prefix>.png, .svg, .md")
    s.add_argument("--title", default="Same prompt and seed per column")
    s.set_defaults(func=cmd_report_qualitative)

    from sb2bench.report.cli import add_cli as add_report_cli
    from sb2bench.train.cli import add_cli

    add_cli(sub)
    add_report_cli(sub)
    return p


def main(argv: list[str] | None = None, warm: bool = True) -> int:
    """``warm``: hand the command to a warm interpreter when $SB2BENCH_WARM=1 (sb2bench/_infra/warm.py)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if warm:
        from sb2bench._infra import warm as warm_interpreter

        if warm_interpreter.wanted(argv):
            code = warm_interpreter.run_in_server(argv, entry="sb2bench.cli:run")
            if code is not None:
                return code
    return run(argv)


def run(argv: list[str]) -> int:
    """Parse and run one command in this process (a warm worker calls this directly)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"sb2bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
