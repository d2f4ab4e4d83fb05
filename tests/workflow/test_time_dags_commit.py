"""bench/time_dags.py labels each timed DAG with the commit it ran: ``+dirty`` must mean changed code or config,
not the reports the benches themselves rewrite (a second timing run would otherwise read the first's rows as
a dirty tree)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))
import time_dags  # noqa: E402


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_commit_ignores_reports_but_not_code(tmp_path, monkeypatch):
    (tmp_path / "reports" / "bench").mkdir(parents=True)
    (tmp_path / "reports" / "bench" / "dag_times.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "c")
    monkeypatch.setattr(time_dags, "ROOT", tmp_path)
    clean = time_dags.commit()
    assert clean and not clean.endswith("+dirty") and clean != "unknown"

    (tmp_path / "reports" / "bench" / "dag_times.md").write_text("a first run's rows\n")
    assert time_dags.commit() == clean

    (tmp_path / "code.py").write_text("x = 2\n")
    assert time_dags.commit() == clean + "+dirty"
