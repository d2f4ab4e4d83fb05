"""``sb2bench prompts-build`` (training prompt files from JourneyDB / LAION as distributed) and
``sb2bench dataset-json`` (SBv2's pinned COCO prompt list): the command lines of this package."""
from __future__ import annotations

import argparse


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


def add_cli(subparsers) -> None:
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
