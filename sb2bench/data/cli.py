"""``sb2bench prompts-build`` (training prompt files from JourneyDB / LAION as distributed),
``sb2bench dataset-json`` (SBv2's pinned COCO prompt list), ``prompts-head`` (a prompt subset),
``coco-prompts``, ``coco-reference``, ``coco-download`` and ``protocol-resize`` (coco.py, download.py):
the command lines of this package."""
from __future__ import annotations

import argparse
from pathlib import Path

from sb2bench._infra.cli_args import add_runtime_args, json_arg


def cmd_prompts_head(a: argparse.Namespace) -> None:
    from sb2bench.data.prompts import read_prompts, write_prompts

    rows = read_prompts(a.prompts)
    if a.n > len(rows):
        raise SystemExit(f"{a.prompts} holds {len(rows)} prompts, fewer than the {a.n} asked for "
                         f"(evaluation.subset.n_prompts must be below the set's size)")
    write_prompts(a.out, rows[:a.n])


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


def cmd_prompts_build(a: argparse.Namespace) -> None:
    from sb2bench.data.prompt_sources import Source, write_build

    sources = []
    if a.journeydb:
        sources.append(Source("journeydb", a.journeydb, a.journeydb_field, max_prompts=a.journeydb_max,
                              name=a.journeydb_name))
    if a.laion:
        sources.append(Source("laion", a.laion, a.caption_column, a.score_column, a.min_score, a.laion_max,
                              name=a.laion_name))
    if not sources:
        raise ValueError("give --journeydb FILE... and/or --laion FILE...")
    info = write_build(sources, a.out, a.manifest)
    for s in info["sources"]:
        print(f"{s['name']}: {s['rows']} rows read, {s['kept']} kept ({s['empty']} empty, {s['below_score']} below "
              f"score, {s['duplicates']} duplicates, {s['over_limit']} over the limit)")
    print(f"wrote {info['n_prompts']} prompts to {a.out} (sha256 {info['sha256']})")


def cmd_dataset_json(a: argparse.Namespace) -> None:
    from sb2bench.data.dataset_json import fetch

    print(f"verified {fetch(a.out, a.url, a.sha256)}")


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("prompts-head", help="the first N prompts of a prompt file (evaluation.subset)")
    s.add_argument("--prompts", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_prompts_head)

    s = subparsers.add_parser("coco-prompts", help="the COCO-2014 prompt list of the sbv2 / dmd2 protocols")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset-json", help="SBv2 dataset.json: its first N entries")
    src.add_argument("--caption-list", help="a caption list (one per line or JSON Lines): its first N")
    src.add_argument("--captions", help="captions_val2014.json: N images, one caption each, seeded")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, default=2014)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_coco_prompts)

    s = subparsers.add_parser("coco-reference", help="protocol-resize every val2014 image once (the reference set)")
    s.add_argument("--images", required=True, help="the val2014 folder")
    s.add_argument("--out", required=True)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--expected", type=int, default=None, help="required image count (40504)")
    add_runtime_args(s, threads=4)
    s.set_defaults(func=cmd_coco_reference)

    s = subparsers.add_parser("coco-download", help="download and unpack COCO archives (checksum-verified, resumable)")
    s.add_argument("--files", type=json_arg, required=True, help='{"files": [{"url", "sha256"}, ...]}')
    s.add_argument("--root", required=True)
    s.set_defaults(func=cmd_coco_download)

    s = subparsers.add_parser("protocol-resize", help="protocol-resize a system's images (centre crop, LANCZOS)")
    s.add_argument("--images", required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--size", type=int, default=256)
    add_runtime_args(s, threads=4)
    s.set_defaults(func=cmd_protocol_resize)

    s = subparsers.add_parser("prompts-build", help="training prompt JSONL from JourneyDB annotations / LAION parquet")
    s.add_argument("--journeydb", nargs="+", default=[], metavar="FILE",
                   help="JourneyDB train annotations (.jsonl, .jsonl.gz, .jsonl.tgz as distributed; globs allowed)")
    s.add_argument("--journeydb-field", default="prompt", help="JSON field of the text prompt")
    s.add_argument("--journeydb-max", type=int, default=None, help="keep the first N distinct prompts")
    s.add_argument("--journeydb-name", default="journeydb", help="source name in the rows and the manifest")
    s.add_argument("--laion", nargs="+", default=[], metavar="FILE", help="LAION caption parquet files (globs allowed)")
    s.add_argument("--caption-column", default="TEXT", help="parquet column of the caption")
    s.add_argument("--score-column", default=None, help="parquet column of the aesthetic score (with --min-score)")
    s.add_argument("--min-score", type=float, default=None, help="keep rows with score >= this (SBv2: 6.25)")
    s.add_argument("--laion-max", type=int, default=None, help="keep the first N distinct captions (SBv2: 2M)")
    s.add_argument("--laion-name", default="laion", help="source name in the rows and the manifest")
    s.add_argument("--out", required=True, help="prompt JSONL to write")
    s.add_argument("--manifest", default=None, help="manifest JSON (default: <out>.manifest.json beside it)")
    s.set_defaults(func=cmd_prompts_build)

    s = subparsers.add_parser("dataset-json", help="SBv2's dataset.json (COCO prompts), downloaded and SHA-256 checked")
    s.add_argument("--out", required=True)
    s.add_argument("--url", default=None)
    s.add_argument("--sha256", default=None)
    s.set_defaults(func=cmd_dataset_json)
