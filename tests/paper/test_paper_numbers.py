"""Published numbers: every table loads consistently, and values match the paper-facts transcription."""
import math
import os
import re
from pathlib import Path

import pytest

from sb2bench.paper import numbers as pn

FACTS = Path(os.environ.get("SB2BENCH_PAPER_FACTS", "/work/shared/reference/paper_facts.md"))

# Heading in paper_facts.md that introduces each table (the markdown table follows it).
HEADINGS = {f"sbv2_t{i}": f"**SBv2 Table {i}" for i in range(1, 10)}
HEADINGS |= {"sbv1_page": "**Project-page table", "dmd2_t5": "**DMD2 Table 5"}

EXPECTED_TABLES = list(HEADINGS)


def test_all_tables_listed_in_order():
    assert pn.list_tables() == EXPECTED_TABLES


@pytest.mark.parametrize("table_id", EXPECTED_TABLES)
def test_table_is_consistent(table_id):
    t = pn.paper_table(table_id)
    assert t.origin == "paper" and t.source.startswith("[") and t.title
    assert len(set(t.row_keys)) == len(t.rows) > 0
    for c in t.columns:
        assert c.direction in ("↓", "↑")
    for r in t.rows:
        assert set(r.cells) == set(t.metrics)
        assert set(r.settings) == set(t.settings)
        for cell in r.cells.values():
            assert cell.source == "paper"
            assert (cell.value is None) == (cell.printed == "–")
            if cell.value is not None:
                assert math.isclose(cell.value, float(cell.printed))


@pytest.mark.parametrize("table_id,row,metric,expected,printed", [
    ("sbv2_t1", "sd21_cfg4.5", "fid", 12.26, "12.26"),
    ("sbv2_t1", "sd21_cfg2", "clip_score", 0.31, "0.31"),
    ("sbv2_t1", "sd_turbo", "fid", 16.10, "16.10"),
    ("sbv2_t1", "sd21_cfg7.5", "nfe", 25, "25"),
    ("sbv2_t2", "model_a", "recall", 0.54, "0.54"),
    ("sbv2_t3", "sbv2", "fid", 8.77, "8.77"),
    ("sbv2_t3", "sbv2_reg", "fid", 8.14, "8.14"),
    ("sbv2_t3", "instaflow_0.9b", "fid", 13.33, "13.33"),
    ("sbv2_t3", "stylegan_t", "clip_score", None, "–"),
    ("sbv2_t4", "sd21", "hps_painting", 27.46, "27.46"),
    ("sbv2_t4", "sbv2_reg", "hps_photo", 27.62, "27.62"),
    ("sbv2_t5", "swiftbrush_turbo_init_1.3m", "clip_score", 0.29, "0.29"),
    ("sbv2_t5", "model_b", "fid", 11.02, "11.02"),
    ("sbv2_t6", "clip_loss", "clip_score", 0.337, "0.337"),
    ("sbv2_t6", "efficient_clamped_clip", "clip_score", 0.330, "0.330"),
    ("sbv2_t7", "sb_init_merged", "fid", 11.69, "11.69"),
    ("sbv2_t8", "gigagan", "gpu_days", 6250.0, "6250.0"),
    ("sbv2_t8", "hipa", "inference_s", None, "–"),
    ("sbv2_t8", "instaflow_0.9b", "fid", 13.10, "13.10"),
    ("sbv2_t9", "model_b_hps", "hps_anime", 28.22, "28.22"),
    ("sbv2_t9", "sd21_cfg4.5", "clip_score", 0.32, "0.32"),
    ("sbv1_page", "swiftbrush", "fid", 16.67, "16.67"),
    ("sbv1_page", "boot", "clip_score", 35.49, "35.49"),
    ("dmd2_t5", "dmd2_1step", "fid", 8.35, "8.35"),
    ("dmd2_t5", "parti_3b", "fid", 8.10, "8.10"),
    ("dmd2_t5", "dalle", "inference_s", None, "–"),
])
def test_sample_values(table_id, row, metric, expected, printed):
    t = pn.paper_table(table_id)
    assert t.value(row, metric) == expected
    assert t.printed(row, metric) == printed
    assert pn.paper_value(table_id, row, metric) == expected


def test_notes_and_cautions_carried():
    t4 = pn.paper_table("sbv2_t4")
    assert "permuted" in t4.row("sd21").caution
    assert "0.30" in " ".join(pn.paper_table("sbv2_t1").notes)
    assert any("UNVERIFIED" in n for n in pn.paper_table("sbv2_t5").notes)
    assert pn.paper_table("sbv2_t5").row("model_a").settings == {
        "scheme": "full", "turbo_init": True, "clamped_clip": False, "laion": True}
    assert pn.paper_table("sbv2_t2").row("model_a").settings["train_prompts"] == "3.3M"
    assert pn.paper_table("dmd2_t5").row("gigagan").settings["resolution"] == 512
    assert pn.paper_table("sbv2_t3").row("sbv2_reg").display_label == "Ours*"


def test_same_system_same_numbers_across_tables():
    """Within SBv2, rows sharing a key agree except where the paper itself disagrees (each noted).

    Other papers are left out: their protocols and timing hardware differ (e.g. SwiftBrush FID 16.67 vs 15.46)."""
    known = {("swiftbrush_turbo_init_1.3m", "clip_score"),  # T2 0.30, T5 0.29, T6 0.297
             ("sd21_cfg4.5", "clip_score"),  # T1/T3 0.33, T9 0.32
             ("instaflow_0.9b", "fid")}  # T3 13.33 (rerun), T8 13.10 (reported)
    seen: dict[tuple[str, str], tuple[str, float]] = {}
    for tid in (t for t in pn.list_tables() if t.startswith("sbv2_")):
        for r in pn.paper_table(tid).rows:
            for m, cell in r.cells.items():
                if cell.value is None:
                    continue
                prev = seen.setdefault((r.key, m), (tid, cell.value))
                if prev[1] != cell.value:
                    assert (r.key, m) in known, f"{r.key}/{m}: {prev} vs {tid}={cell.value}"


def test_errors_name_the_fix():
    with pytest.raises(pn.PaperTableError, match="available"):
        pn.paper_table("T1")
    with pytest.raises(pn.PaperTableError, match="rows"):
        pn.paper_table("sbv2_t1").value("nope", "fid")
    with pytest.raises(pn.PaperTableError, match="columns"):
        pn.paper_table("sbv2_t7").value("swiftbrush", "clip_score")


def test_malformed_file_rejected(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("source: paper\nmetrics: {fid: {label: FID, direction: '↓'}}\ntables:\n"
                   "- {id: x, title: X, source: '[X]', paper: P, columns: [fid],\n"
                   "   rows: [{key: a, label: A, values: {fid: '9.1'}}]}\n")
    with pytest.raises(pn.PaperTableError, match="not a number"):
        pn.load_tables(bad)


def _markdown_rows(text: str, heading: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    i = next(j for j in range(start, len(lines)) if lines[j].startswith("|"))
    rows = []
    while i < len(lines) and lines[i].startswith("|"):
        rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
        i += 1
    return rows[2:]  # drop header and separator


def _clean(cell: str) -> str:
    cell = re.sub(r"\*\([^)]*\)\*", "", cell).replace("**", "").strip()
    return re.sub(r"^(\d+(\.\d+)?)s$", r"\1", cell)  # DMD2 latency "6.4s"


@pytest.mark.skipif(not FACTS.is_file(), reason=f"{FACTS} not present (set SB2BENCH_PAPER_FACTS)")
@pytest.mark.parametrize("table_id", EXPECTED_TABLES)
def test_every_value_matches_paper_facts(table_id):
    """Each row's printed values appear, in column order, in the same row of paper_facts.md."""
    text = FACTS.read_text(encoding="utf-8")
    md_rows = _markdown_rows(text, HEADINGS[table_id])
    table = pn.paper_table(table_id)
    assert len(md_rows) == len(table.rows)
    for md, row in zip(md_rows, table.rows):
        cells = iter(_clean(c) for c in md[1:])
        for m in table.metrics:
            want = row.cells[m].printed
            assert any(c == want for c in cells), f"{table_id}/{row.key}/{m}: {want} not in {md}"
