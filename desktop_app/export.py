"""Export file-analysis results as CSV and JSON with the fields of ``ser analyze``.

JSON is a list of :meth:`ser_engine.analysis.FileResult.to_dict` objects. The
CSV table has one row per file with the same scalar fields plus one
``p_<label>`` column per emotion; the segment CSV has one row per analysed
window: ``path, start_s, end_s, speech, label, p_<label>...``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from ser_engine.analysis import FileResult

__all__ = ["FILE_FIELDS", "SEGMENT_FIELDS", "export_csv", "export_json", "segments_path_for"]

FILE_FIELDS = ("path", "ok", "error", "duration_s", "speech_s", "label", "confidence")
SEGMENT_FIELDS = ("path", "start_s", "end_s", "speech", "label")


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
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def export_csv(results: Sequence[FileResult], path: Path, *, labels: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write the table to ``path`` and the per-segment timeline beside it.

    Returns
    -------
    (table_path, segments_path)
    """
    labs = _labels(results, labels)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*FILE_FIELDS, *(f"p_{lab}" for lab in labs)])
        for r in results:
            d = r.to_dict()
            row = ["" if d[k] is None else d[k] for k in FILE_FIELDS]
            probs = d["probabilities"]
            w.writerow([*row, *(probs.get(lab, "") for lab in labs)])
    seg_path = segments_path_for(path)
    with seg_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*SEGMENT_FIELDS, *(f"p_{lab}" for lab in labs)])
        for r in results:
            for s in r.to_dict()["segments"]:
                probs = s["probabilities"]
                w.writerow([str(r.path), s["start_s"], s["end_s"], s["speech"], s["label"] or "",
                            *(probs.get(lab, "") for lab in labs)])
    return path, seg_path
