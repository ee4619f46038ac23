"""Render a whole analysis (:class:`imbstat.Results`): its JSON report, CSV tables, figures, terminal tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from imbstat.analysis import Results
from imbstat.report import terminal
from imbstat.report.document import document

__all__ = ["report_document", "terminal_tables", "write_files"]


def report_document(results: Results, command: str = "report") -> dict[str, Any]:
    """The versioned JSON report: the dataset head, then one section per statistic."""
    body = {s.name: s.to_json(r, results.ds) for s, r in results.computed()}
    return document(command, results.ds, body, results.options)


def write_files(results: Results, out_dir: Path) -> list[Path]:
    """CSV tables and PNG figures of every section into ``out_dir``."""
    written: list[Path] = []
    for s, r in results.computed():
        written += s.write_tables(r, results.ds, out_dir) + s.write_figures(r, out_dir)
    return written


def terminal_tables(results: Results) -> list[Table]:
    """The dataset table, then every section's terminal tables."""
    found = [terminal.dataset_table(results.ds)]
    for s, r in results.computed():
        found += s.terminal(r)
    return found
