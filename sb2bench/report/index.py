"""Index pages: ``reports/<world>/index.md`` (the claims summary, then every output of the world) and
``reports/index.md`` (every world's index and every benchmark report), so a reader starts in one place."""
from __future__ import annotations

from pathlib import Path

from sb2bench._infra.atomic import atomic_file
from sb2bench.plan.paths import results_dir
from sb2bench.report.claims import Verdict


def _mark(i: int) -> str:
    """Footnote mark of the i-th interval method (0-based): a superscript digit."""
    return "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)] for d in str(i + 1))


def _claims_table(verdicts: list[Verdict]) -> list[str]:
    """The claims table; when claims differ in interval method, each interval is marked with its method's
    footnote, so no method reads as belonging to every claim."""
    methods = list(dict.fromkeys(v.method for v in verdicts))
    lines = ["| claim | paper's evidence | ours (measured) | difference in the paper's direction [paired interval] "
             "| smallest detectable difference | verdict |",
             "|---|---|---|---:|---:|---|"]
    for v in verdicts:
        digits = 4 if v.claim["metric"] in ("clip_score", "precision", "recall", "attribute_accuracy") else 2
        mark = _mark(methods.index(v.method)) if len(methods) > 1 else ""
        lines.append(f"| {v.claim['text']} | {v.claim.get('paper') or '–'} | {v.measured} | "
                     f"{v.difference:+.{digits}f} [{v.low:+.{digits}f}, {v.high:+.{digits}f}]{mark} | "
                     f"{v.detectable:.{digits}f} | **{v.verdict}** |")
    if len(methods) == 1:
        return lines + ["", f"Intervals: {methods[0]}."]
    return lines + ["", "Intervals:", ""] + [f"- {_mark(i)} {m}." for i, m in enumerate(methods)]


def write_world_index(world: str, verdicts: list[Verdict], outputs: list[dict], out: Path, tier: str | None = None,
                      note: str = "") -> None:
    """``outputs``: [{path (relative to the index), title, section}] in the order to list them; ``tier`` and
    ``note`` (report.tier, report.note): which of the world's tiers made these reports, and why it exists."""
    lines = [f"# sb2bench reports: {world} world" + (f", tier {tier}" if tier else ""), ""]
    lines += [note.strip(), ""] if note.strip() else []
    if verdicts:
        lines += ["## The paper's claims at this scale", "",
                  "Measured by the DAG, whatever they show. Each claim compares systems scored on the same prompts "
                  "and noise, so the difference is bootstrapped *paired* (the same resampled images for both). "
                  "**holds**: the whole interval of the difference lies in the paper's direction; "
                  "**contradicted**: it lies against it; **inconclusive**: it contains 0 -- the smallest detectable "
                  "difference (the interval's half-width) is the effect size this test could have resolved. "
                  "The claims are declared in the config (`claims:`); method: docs/evaluation.md.", ""]
        lines += _claims_table(verdicts) + [""]
    sections: dict[str, list[dict]] = {}
    for o in outputs:
        sections.setdefault(o["section"], []).append(o)
    for name, items in sections.items():
        lines += [f"## {name}", ""] + [f"- [{o['title']}]({o['path']})" for o in items] + [""]
    lines += [f"Every figure is read from `{results_dir(world)}/`, whose JSON files record how it was made "
              "(protocol, model hashes, runtime). `snakemake --report reports/report.html` bundles these "
              "reports with their captions and the per-job benchmarks."]
    with atomic_file(out) as f:
        f.write("\n".join(lines) + "\n")


def _title(md: Path) -> str:
    for line in md.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return md.stem


def write_top_index(reports: Path, out: Path) -> None:
    """Links every world's index and every benchmark report found under ``reports``."""
    reports = Path(reports)
    lines = ["# sb2bench reports", "",
             "Start with a world's index: its claims summary comes first. Regenerate: `snakemake --cores all` "
             "(toy world) or `snakemake --cores all --configfile config/paper.yaml` (real world); benchmarks: "
             "the command at the top of each benchmark report.", "", "## Worlds", ""]
    worlds = sorted(p for p in reports.glob("*/index.md") if p.parent.name != "bench")
    lines += [f"- [{_title(p)}]({p.relative_to(reports).as_posix()})" for p in worlds] or ["- (none yet)"]
    bench = sorted((reports / "bench").glob("*.md"))
    lines += ["", "## Benchmarks", ""]
    lines += [f"- [{_title(p)}]({p.relative_to(reports).as_posix()})" for p in bench] or ["- (none yet)"]
    with atomic_file(out) as f:
        f.write("\n".join(lines) + "\n")
