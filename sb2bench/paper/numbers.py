"""The published numbers (SBv2 Tables 1-9, the SwiftBrush v1 project page, DMD2 Table 5) as data.

Reports put measured numbers next to these, so they live in one reviewed file
(``sb2bench/paper/paper_tables.yaml``) instead of being retyped in rules or templates. Every value
is labelled ``source: paper``; the loader keeps each number's printed text so a report can show
``0.30`` as printed rather than ``0.3``.
"""
from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

DATA_FILE = "paper/paper_tables.yaml"
DIRECTIONS = ("↓", "↑")
MARKERS = ("†", "‡", "*")


class PaperTableError(ValueError):
    """The tables file is malformed, or a table / row / metric that does not exist was asked for."""


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    direction: str  # "↓" lower is better, "↑" higher is better


@dataclass(frozen=True)
class Cell:
    """One published number: ``value`` is None where the paper prints "–"."""
    value: float | None
    printed: str
    source: str = "paper"


@dataclass(frozen=True)
class PaperRow:
    key: str
    label: str
    markers: tuple[str, ...]
    cells: dict[str, Cell]
    settings: dict[str, object]
    notes: tuple[str, ...]
    caution: str | None  # set when a per-column comparison with this row would mislead

    @property
    def display_label(self) -> str:
        return self.label + "".join(self.markers)


@dataclass(frozen=True)
class PaperTable:
    id: str
    title: str
    source: str  # citation tag, e.g. "[SBv2 T1]"
    paper: str
    columns: tuple[Column, ...]
    settings: dict[str, str]  # setting key -> printed header (check marks, groups, sizes)
    rows: tuple[PaperRow, ...]
    notes: tuple[str, ...]
    origin: str = "paper"
    _by_key: dict[str, PaperRow] = field(default_factory=dict, repr=False, compare=False)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns)

    @property
    def row_keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.rows)

    def column(self, metric: str) -> Column:
        for c in self.columns:
            if c.key == metric:
                return c
        raise PaperTableError(f"{self.source} ({self.id}) has no column {metric!r}; columns: {list(self.metrics)}")

    def row(self, row_key: str) -> PaperRow:
        try:
            return self._by_key[row_key]
        except KeyError:
            raise PaperTableError(f"{self.source} ({self.id}) has no row {row_key!r}; "
                                  f"rows: {list(self.row_keys)}") from None

    def cell(self, row_key: str, metric: str) -> Cell:
        self.column(metric)
        return self.row(row_key).cells[metric]

    def value(self, row_key: str, metric: str) -> float | None:
        """The published number (None where the paper prints "–")."""
        return self.cell(row_key, metric).value

    def printed(self, row_key: str, metric: str) -> str:
        return self.cell(row_key, metric).printed

    def records(self) -> list[dict]:
        """Long format, one dict per (row, metric): handy for pandas and for joining measured results."""
        return [{"table": self.id, "source": self.source, "origin": self.origin, "row": r.key,
                 "label": r.display_label, "metric": c.key, "direction": c.direction,
                 "value": r.cells[c.key].value, "printed": r.cells[c.key].printed, "caution": r.caution}
                for r in self.rows for c in self.columns]


class _Printed(str):
    """A YAML number kept as text (distinguishes ``0.30`` the number from ``"1.3M"`` the string)."""


class _PrintedLoader(yaml.SafeLoader):
    """SafeLoader that returns numbers as their source text, so printed precision survives."""


def _as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> _Printed:
    return _Printed(loader.construct_scalar(node))


_PrintedLoader.add_constructor("tag:yaml.org,2002:float", _as_text)
_PrintedLoader.add_constructor("tag:yaml.org,2002:int", _as_text)


def _number(text: str) -> float | int:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _cell(raw, where: str) -> Cell:
    if raw is None:
        return Cell(None, "–")
    if not isinstance(raw, _Printed):
        raise PaperTableError(f"{where}: {raw!r} is not a number (write null for '–')")
    value = float(_number(raw))
    if not math.isfinite(value):
        raise PaperTableError(f"{where}: {raw!r} is not finite")
    return Cell(value, str(raw))


def _setting(raw):
    return _number(raw) if isinstance(raw, _Printed) else raw


def _build_table(t: dict, metrics: dict[str, dict], path: str) -> PaperTable:
    tid = t.get("id")
    for key in ("id", "title", "source", "paper", "columns", "rows"):
        if key not in t:
            raise PaperTableError(f"{path}: table {tid!r} lacks {key!r}")
    labels = t.get("column_labels", {})
    columns = []
    for key in t["columns"]:
        if key not in metrics:
            raise PaperTableError(f"{path}: table {tid} uses metric {key!r}, not declared under 'metrics'")
        m = metrics[key]
        if m["direction"] not in DIRECTIONS:
            raise PaperTableError(f"{path}: metric {key!r} direction {m['direction']!r} not in {DIRECTIONS}")
        columns.append(Column(key, labels.get(key, m["label"]), m["direction"]))
    settings = dict(t.get("settings") or {})
    rows, by_key = [], {}
    for r in t["rows"]:
        where = f"{path}: {tid} row {r.get('key')!r}"
        if not r.get("key") or not r.get("label"):
            raise PaperTableError(f"{where}: every row needs a key and a label")
        if r["key"] in by_key:
            raise PaperTableError(f"{where}: duplicate row key")
        values = r.get("values") or {}
        if set(values) != set(t["columns"]):
            raise PaperTableError(f"{where}: values {sorted(values)} do not match columns {sorted(t['columns'])}")
        row_settings = r.get("settings") or {}
        if set(row_settings) != set(settings):
            raise PaperTableError(f"{where}: settings {sorted(row_settings)} do not match {sorted(settings)}")
        markers = tuple(r.get("markers") or ())
        if any(m not in MARKERS for m in markers):
            raise PaperTableError(f"{where}: unknown marker in {markers}; allowed {MARKERS}")
        row = PaperRow(key=str(r["key"]), label=str(r["label"]), markers=markers,
                       cells={k: _cell(values[k], f"{where} {k}") for k in t["columns"]},
                       settings={k: _setting(v) for k, v in row_settings.items()},
                       notes=tuple(r.get("notes") or ()), caution=r.get("caution"))
        rows.append(row)
        by_key[row.key] = row
    return PaperTable(id=str(tid), title=str(t["title"]), source=str(t["source"]), paper=str(t["paper"]),
                      columns=tuple(columns), settings=settings, rows=tuple(rows),
                      notes=tuple(t.get("notes") or ()), _by_key=by_key)


def load_tables(path: str | Path | None = None) -> dict[str, PaperTable]:
    """Parse and validate a tables file (default: the shipped one)."""
    if path is None:
        text = importlib.resources.files("sb2bench").joinpath(DATA_FILE).read_text(encoding="utf-8")
        path = f"sb2bench/{DATA_FILE}"
    else:
        text = Path(path).read_text(encoding="utf-8")
    doc = yaml.load(text, Loader=_PrintedLoader)
    if not isinstance(doc, dict) or doc.get("source") != "paper" or "tables" not in doc:
        raise PaperTableError(f"{path}: expected a mapping with 'source: paper' and 'tables'")
    tables: dict[str, PaperTable] = {}
    for t in doc["tables"]:
        table = _build_table(t, doc.get("metrics") or {}, str(path))
        if table.id in tables:
            raise PaperTableError(f"{path}: duplicate table id {table.id!r}")
        tables[table.id] = table
    return tables


@lru_cache(maxsize=1)
def _shipped() -> dict[str, PaperTable]:
    return load_tables()


def list_tables() -> list[str]:
    """Ids of the shipped tables, in file order (sbv2_t1 ... sbv2_t9, sbv1_page, dmd2_t5)."""
    return list(_shipped())


def paper_table(table_id: str) -> PaperTable:
    """One shipped table by id, e.g. ``paper_table("sbv2_t3").value("sbv2", "fid") == 8.77``."""
    tables = _shipped()
    if table_id not in tables:
        raise PaperTableError(f"no paper table {table_id!r}; available: {list(tables)}")
    return tables[table_id]


def paper_value(table_id: str, row_key: str, metric: str) -> float | None:
    return paper_table(table_id).value(row_key, metric)
