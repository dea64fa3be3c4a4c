"""Export file-analysis results as CSV and JSON, in the formats of ``ser analyze``.

* JSON: a list of :meth:`ser_engine.analysis.FileResult.to_dict` objects, segments
  included (= ``ser analyze --format json --segments``).
* Table CSV: one row per file, ``path, ok, error, duration_s, speech_s, label,
  confidence, uncertain, p_<label>...`` (= ``ser analyze --format csv``; ``uncertain``
  is 0/1, empty for a failed file).
* Segment CSV (written beside the table as ``<name>_segments.csv``): one row per
  analysis window, ``path, start_s, end_s, speech, label, uncertain, p_<label>...``
  (``uncertain`` empty on silence); a file that failed has one row whose label cell
  says ``ERROR: <reason>`` (= ``ser analyze --format csv --segments``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from ser_engine.analysis import FileResult

__all__ = ["FILE_FIELDS", "SEGMENT_FIELDS", "export_csv", "export_json", "segments_path_for"]

FILE_FIELDS = ("path", "ok", "error", "duration_s", "speech_s", "label", "confidence", "uncertain")
SEGMENT_FIELDS = ("path", "start_s", "end_s", "speech", "label", "uncertain")


def _fmt(v: float | None, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _labels(results: Sequence[FileResult], labels: Sequence[str] | None) -> list[str]:
    if labels:
        return list(labels)
    seen: list[str] = []
    for r in results:
        for lab in r.probabilities:
            if lab not in seen:
                seen.append(lab)
    return seen


def segments_path_for(table_path: Path) -> Path:
    """``batch.csv`` -> ``batch_segments.csv``."""
    return table_path.with_name(table_path.stem + "_segments" + table_path.suffix)


def export_json(results: Sequence[FileResult], path: Path) -> Path:
    """Write the results (with their segments) as a JSON list; returns ``path``."""
    data = [r.to_dict() for r in results]
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def export_csv(results: Sequence[FileResult], path: Path, *, labels: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write the table to ``path`` and the per-segment timeline beside it.

    Returns
    -------
    (table_path, segments_path)
    """
    labs = _labels(results, labels)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*FILE_FIELDS, *(f"p_{lab}" for lab in labs)])
        for r in results:
            w.writerow([str(r.path), int(r.ok), r.error or "", _fmt(r.duration_s), _fmt(r.speech_s), r.label or "",
                        _fmt(r.confidence, 4), int(r.uncertain) if r.ok else "",
                        *(_fmt(r.probabilities.get(lab), 4) for lab in labs)])
    seg_path = segments_path_for(path)
    with seg_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*SEGMENT_FIELDS, *(f"p_{lab}" for lab in labs)])
        for r in results:
            if not r.ok:
                w.writerow([str(r.path), "", "", "", "ERROR: " + str(r.error), ""] + [""] * len(labs))
            for s in r.segments:
                w.writerow([str(r.path), f"{s.start_s:.3f}", f"{s.end_s:.3f}", int(s.speech), s.label or "",
                            int(s.uncertain) if s.speech else "",
                            *(_fmt(s.probabilities.get(lab), 4) for lab in labs)])
    return path, seg_path
