"""Training prompt files built from the datasets as distributed (``sb2bench prompts-build``).

SBv2 trains on JourneyDB's prompts (1.3M), on those plus 2M LAION captions (3.3M), and draws the image
regulariser's pairs from LAION-Aesthetic 6.25+ captions. JourneyDB ships its train annotations as JSON Lines
(``train_anno_realease_repath.jsonl``, inside a ``.tgz``; the text prompt is the ``prompt`` field); LAION ships
parquet metadata (a caption column, ``TEXT``, and for the aesthetic subsets a score column). The output is the
project's prompt JSONL (sb2bench.data.prompts): captions stripped and whitespace-collapsed, empty ones dropped, exact
duplicates dropped (first occurrence kept, across sources too), in a fixed order: sources as given, files in
the given (glob-sorted) order, rows in file order. A manifest records the counts per source, the filters and
the SHA-256 of the inputs and of the output, so two builds are comparable without reading 3.3M lines.
"""
from __future__ import annotations

import glob
import gzip
import io
import json
import re
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from sb2bench._infra.atomic import write_json
from sb2bench._infra.hashing import sha256_file
from sb2bench.data.prompts import write_prompts


class PromptSourceError(ValueError):
    pass


@dataclass
class Source:
    """One input of a build: JourneyDB annotation files or LAION parquet files, with their options."""

    kind: str                       # "journeydb" | "laion"
    files: list[str]
    column: str                     # JourneyDB: the JSON field; LAION: the caption column
    score_column: str | None = None
    min_score: float | None = None
    max_prompts: int | None = None  # keep the first N new prompts of this source (after filters and dedup)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.kind
        if self.kind not in ("journeydb", "laion"):
            raise PromptSourceError(f"unknown prompt source kind {self.kind!r}; use 'journeydb' or 'laion'")
        if (self.score_column is None) != (self.min_score is None):
            raise PromptSourceError(f"source {self.name}: give both a score column and a minimum score, or neither "
                                    f"(got score column {self.score_column!r}, minimum {self.min_score!r})")


@dataclass
class SourceCounts:
    name: str
    files: list[dict] = field(default_factory=list)
    rows: int = 0          # records read
    empty: int = 0         # no caption (missing, null or blank)
    below_score: int = 0   # score below min_score (or missing)
    duplicates: int = 0    # caption already kept (from this or an earlier source)
    over_limit: int = 0    # new captions beyond max_prompts
    kept: int = 0


def expand_files(patterns: list[str], key: str) -> list[str]:
    """Each entry is a file or a glob; a glob's matches are sorted (a fixed order on any file system)."""
    out: list[str] = []
    for p in patterns:
        p = str(Path(p).expanduser())
        matches = sorted(glob.glob(p)) if glob.has_magic(p) else ([p] if Path(p).exists() else [])
        if not matches:
            raise PromptSourceError(f"{key}: {p} matches no file; put the dataset's files there or fix the path")
        out += [m for m in matches if m not in out]
    return out


def _jsonl_lines(path: str) -> Iterator[tuple[str, int, str]]:
    """(member name, line number, line) of a .jsonl, .jsonl.gz, or every .jsonl inside a tar(.gz) archive."""
    if tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tf:
            members = sorted((m for m in tf.getmembers() if m.isfile() and ".jsonl" in m.name), key=lambda m: m.name)
            if not members:
                raise PromptSourceError(f"{path}: the archive holds no .jsonl file "
                                        f"(members: {[m.name for m in tf.getmembers()][:10]})")
            for m in members:
                with io.TextIOWrapper(tf.extractfile(m), encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        yield f"{path}:{m.name}", n, line
        return
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            yield path, n, line


def _journeydb_records(path: str, src: Source) -> Iterator[tuple[object, None]]:
    for where, n, line in _jsonl_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptSourceError(f"{where}:{n}: not JSON ({exc})") from exc
        if not isinstance(row, dict) or src.column not in row:
            present = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise PromptSourceError(f"{where}:{n}: no field {src.column!r} (fields present: {present}); "
                                    f"JourneyDB's train annotations keep the text prompt in 'prompt' "
                                    f"(--journeydb-field)")
        yield row[src.column], None


def _parquet_records(path: str, src: Source, batch_rows: int = 65536) -> Iterator[tuple[object, object]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise PromptSourceError("reading LAION parquet files needs pyarrow: pip install pyarrow") from exc
    pf = pq.ParquetFile(path)
    present = list(pf.schema_arrow.names)
    wanted = [src.column] + ([src.score_column] if src.score_column else [])
    for col, what in zip(wanted, ("caption column", "score column")):
        if col not in present:
            raise PromptSourceError(f"{path}: no {what} {col!r}; the columns present are {present} "
                                    f"(choose with --caption-column / --score-column)")
    for batch in pf.iter_batches(batch_size=batch_rows, columns=wanted):
        captions = batch.column(0).to_pylist()
        scores = batch.column(1).to_pylist() if src.score_column else [None] * len(captions)
        yield from zip(captions, scores)


_SPACE = re.compile(r"\s+")


def normalise(caption: object) -> str:
    """Strip and collapse whitespace; non-strings (null, NaN) are empty."""
    return _SPACE.sub(" ", caption).strip() if isinstance(caption, str) else ""


def build_prompts(sources: list[Source]) -> tuple[list[dict], list[SourceCounts]]:
    """The deduplicated prompt rows of ``sources`` in their fixed order, and the counts per source."""
    seen: set[str] = set()
    rows: list[dict] = []
    counts = []
    for src in sources:
        c = SourceCounts(src.name)
        files = expand_files(src.files, f"prompt source {src.name}")
        for path in files:
            c.files.append({"path": path, "bytes": Path(path).stat().st_size, "sha256": sha256_file(path)})
            records = _journeydb_records(path, src) if src.kind == "journeydb" else _parquet_records(path, src)
            for caption, score in records:
                c.rows += 1
                text = normalise(caption)
                if not text:
                    c.empty += 1
                elif src.min_score is not None and not (isinstance(score, (int, float)) and score >= src.min_score):
                    c.below_score += 1
                elif text in seen:
                    c.duplicates += 1
                elif src.max_prompts is not None and c.kept >= src.max_prompts:
                    c.over_limit += 1
                else:
                    seen.add(text)
                    rows.append({"index": len(rows), "caption": text, "source": src.name})
                    c.kept += 1
        counts.append(c)
    if not rows:
        raise PromptSourceError(f"no prompt survived the filters of {[s.name for s in sources]}: "
                                f"{[asdict(c) for c in counts]}")
    return rows, counts


def write_build(sources: list[Source], out: str | Path, manifest: str | Path | None = None) -> dict:
    """Build, write ``out`` (atomic) and its manifest (default ``<out stem>.manifest.json``); return the manifest."""
    rows, counts = build_prompts(sources)
    out = Path(out)
    write_prompts(out, rows)
    info = {
        "out": str(out), "n_prompts": len(rows), "sha256": sha256_file(out),
        "dedup": "exact, after stripping and collapsing whitespace; first occurrence kept (across sources)",
        "order": "sources as given, files in the given (glob-sorted) order, rows in file order",
        "sources": [{**{k: v for k, v in asdict(s).items() if k != "files"}, **asdict(c)}
                    for s, c in zip(sources, counts)],
    }
    write_json(manifest or out.with_name(out.name.removesuffix(".jsonl") + ".manifest.json"), info)
    return info


BUILDS = {  # output name -> the configured sources it is built from (training.prompt_sources)
    "journeydb": ("journeydb",),
    "journeydb_laion": ("journeydb", "laion"),
    "laion_aesthetic": ("laion_aesthetic",),
}


def configured_builds(config: dict) -> dict[str, list[Source]]:
    """The prompt files ``training.prompt_sources`` names inputs for: ``{out_dir}/{name}.jsonl`` -> sources."""
    ps = config["training"]["prompt_sources"]
    out: dict[str, list[Source]] = {}
    for name, parts in BUILDS.items():
        if all(ps[p]["files"] for p in parts):
            out[f"{ps['out_dir'].rstrip('/')}/{name}.jsonl"] = [source_from_config(p, ps[p]) for p in parts]
    return out


def source_from_config(name: str, block: dict) -> Source:
    if name == "journeydb":
        return Source("journeydb", list(block["files"]), block["field"], max_prompts=block["max_prompts"], name=name)
    return Source("laion", list(block["files"]), block["caption_column"], block["score_column"], block["min_score"],
                  block["max_prompts"], name=name)


def cli_args(sources: list[Source]) -> list[str]:
    """``sb2bench prompts-build`` arguments that rebuild ``sources`` (one source of each kind)."""
    args: list[str] = []
    for s in sources:
        flag = "--journeydb" if s.kind == "journeydb" else "--laion"
        args += [flag, *s.files, f"{flag}-name", s.name]
        if s.kind == "journeydb":
            args += ["--journeydb-field", s.column]
        else:
            args += ["--caption-column", s.column]
            if s.score_column is not None:
                args += ["--score-column", s.score_column, "--min-score", repr(s.min_score)]
        if s.max_prompts is not None:
            args += [f"{flag}-max", str(s.max_prompts)]
    return args


def check_columns(src: Source, files: list[str]) -> None:
    """The named column is in every parquet file's schema (metadata only) and in the first JourneyDB record of
    each file (the start of the stream), so a wrong name is refused before the build job, not hours into it."""
    for path in files:
        if src.kind == "laion":
            next(iter(_parquet_records(path, src, batch_rows=1)), None)  # the schema check runs first
        else:
            next(iter(_journeydb_records(path, src)), None)


def check_sources(config: dict) -> None:
    """Every configured source file exists and has the named columns, before any job (raises PromptSourceError
    naming the key or the file)."""
    ps = config["training"]["prompt_sources"]
    for name in ("journeydb", "laion", "laion_aesthetic"):
        if ps[name]["files"]:
            src = source_from_config(name, ps[name])
            files = expand_files(ps[name]["files"], f"config key training.prompt_sources.{name}.files")
            try:
                check_columns(src, files)
            except PromptSourceError as exc:
                raise PromptSourceError(f"config key training.prompt_sources.{name}: {exc}") from exc
