"""Export file-analysis results as CSV and JSON, in the formats of ``ser analyze``.

* JSON: a list of :meth:`ser_engine.analysis.FileResult.to_dict` objects, segments
  included (= ``ser analyze --format json --segments``).
* Table CSV: one row per file, ``path, ok, error, duration_s, speech_s, label,
  confidence, uncertain, p_<label>..., warning`` (= ``ser analyze --format csv``;
  ``uncertain`` is 0/1, empty for a failed file; ``warning`` says why a result covers
  only part of the file, empty otherwise; it is last so earlier columns keep their places).
* Segment CSV (written beside the table as ``<name>_segments.csv``): the table's columns
  plus ``kind, start_s, end_s, speech``: each file's row (``kind`` = ``file``) followed by
  one row per analysis window (``kind`` = ``segment``); a failed file has its file row only
  (= ``ser analyze --format csv --segments``). Both CSVs are written by the CLI's own
  :func:`ser_engine.cli.csv_header` / :func:`ser_engine.cli.csv_rows`, so they match it by
  construction.

Files are written atomically and privately: each goes to a temporary file in the same
folder (mode 0600, or stricter if the umask says so), is flushed and fsynced, then
renamed over the target with :func:`os.replace`. A failed export (full disk, no
permission, bad name) raises :class:`ExportError` naming the file and the reason and
leaves any earlier file at that path byte-identical; no temporary file is left behind.
Folders the export has to create are made 0700 (minus the umask). File names that are
not valid UTF-8 are written with their undecodable bytes as ``\\xNN`` escapes, so the
output is always valid UTF-8.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ser_engine.analysis import FileResult
from ser_engine.cli import FILE_COLUMNS, csv_header, csv_rows
from ser_engine.live import make_private_folder

__all__ = ["FILE_FIELDS", "SEGMENT_FIELDS", "TRAILING_FIELDS", "ExportError", "atomic_write_text", "export_csv",
           "export_json", "safe_text", "segments_path_for"]

FILE_FIELDS = FILE_COLUMNS  # then p_<label>..., then TRAILING_FIELDS
SEGMENT_FIELDS = FILE_COLUMNS  # the segment CSV: the same columns, then also SEGMENT_COLUMNS at the end
TRAILING_FIELDS = ("warning",)  # after the p_<label> columns, in both CSVs


class ExportError(OSError):
    """An export could not be written; the message names the file and the reason."""


def safe_text(text: str) -> str:
    """``text`` as valid UTF-8-encodable text: undecodable bytes of a file name become ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
            .encode("utf-8", "backslashreplace").decode("utf-8")


def _safe(obj: Any) -> Any:
    if isinstance(obj, str):
        return safe_text(obj)
    if isinstance(obj, dict):
        return {safe_text(str(k)): _safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_safe(v) for v in obj]
    return obj


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "the disk is full"
        if exc.strerror:
            return exc.strerror
    return str(exc) or type(exc).__name__


def _write_temp(path: Path, write: Callable[[TextIO], None]) -> Path:
    """Write through ``write`` into a private temporary file beside ``path``, fsynced; returns its path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # 0600 & ~umask
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write_many(items: Sequence[tuple[Path, Callable[[TextIO], None]]]) -> None:
    """Write every file to a temporary first; only when all are complete, rename them into place."""
    temps: list[tuple[Path, Path]] = []
    current = items[0][0] if items else Path()
    try:
        for path, write in items:
            current = path
            make_private_folder(path.parent)
            temps.append((_write_temp(path, write), path))
        for tmp, path in temps:
            current = path
            os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise ExportError(f"Cannot write {safe_text(str(current))}: {_reason(exc)}") from exc
    for folder in {p.parent for p, _ in items}:
        _fsync_dir(folder)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and privately; :class:`ExportError` on failure."""
    def write(fh: TextIO) -> None:
        fh.write(text)

    _atomic_write_many([(Path(path), write)])
    return Path(path)


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
    """Write the results (with their segments) as a JSON list, atomically; returns ``path``.

    Raises
    ------
    ExportError
        The file could not be written (any earlier file at ``path`` is unchanged).
    """
    data = _safe([r.to_dict() for r in results])
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return atomic_write_text(Path(path), text)


def export_csv(results: Sequence[FileResult], path: Path, *, labels: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write the table to ``path`` and the per-segment timeline beside it.

    Both files are complete or neither is replaced (see the module docstring).

    Returns
    -------
    (table_path, segments_path)

    Raises
    ------
    ExportError
        A file could not be written (earlier files at both paths are unchanged).
    """
    path = Path(path)
    labs = _labels(results, labels)
    seg_path = segments_path_for(path)

    def writer(segments: bool) -> Callable[[TextIO], None]:
        def write(fh: TextIO) -> None:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(csv_header(labels=labs, segments=segments))
            for r in results:
                w.writerows(csv_rows(r, labels=labs, segments=segments))

        return write

    table, segments = writer(False), writer(True)
    _atomic_write_many([(path, table), (seg_path, segments)])
    return path, seg_path
