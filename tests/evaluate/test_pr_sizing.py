"""bench/pr_sizing.py: its ideal generator renders each prompt's caption anew, and a system identical to the
reference reads as perfect at every size."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

from sb2bench.data.prompts import read_prompts
from sb2bench.toyworld.prompt_sets import write_eval_set

ROOT = Path(__file__).resolve().parents[2]


def test_ideal_generator_and_sizes(tmp_path):
    results = tmp_path / "results" / "toy"
    evald = results / "data" / "eval"
    evald.mkdir(parents=True)
    write_eval_set(0, 40, evald / "prompts.jsonl", evald / "reference")
    copy = results / "samples" / "copy" / "images"
    shutil.copytree(evald / "reference", copy)
    out = tmp_path / "pr"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "pr_sizing.py"), "--results", str(results),
                           "--systems", "copy", "--sizes", "20", "40", "--work", str(tmp_path / "work"),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(out.with_suffix(".json").read_text())
    for n in ("20", "40"):
        copy_scores = rec["by_size"][n]["systems"]["copy"]
        assert copy_scores["precision"] == copy_scores["recall"] == 1.0 and abs(copy_scores["fid"]) < 1e-3
        ideal = rec["by_size"][n]["systems"]["ideal generator"]
        assert 0.0 <= ideal["precision"] <= 1.0 and ideal["fid"] > 1e-3  # fresh renders, not the reference
    ideal_dir = tmp_path / "work" / "ideal"
    assert len(list(ideal_dir.glob("*.png"))) == 40 and len(read_prompts(evald / "prompts.jsonl")) == 40
    assert "| 40 |" in out.with_suffix(".md").read_text()
    # a larger size than the images is refused, naming the flag
    bad = subprocess.run([sys.executable, str(ROOT / "bench" / "pr_sizing.py"), "--results", str(results),
                          "--systems", "copy", "--sizes", "80", "--work", str(tmp_path / "work"), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--sizes [80]" in bad.stderr
