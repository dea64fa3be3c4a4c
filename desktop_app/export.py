"""Export file-analysis results as CSV and JSON files, byte-identical to ``ser analyze``'s output.

The content comes from the one exporter, :class:`ser_engine.files.export.ResultWriter`:

* JSON = ``ser analyze --format json --segments``;
* the table CSV = ``ser analyze --format csv``;
* the segment CSV, written beside the table as ``<name>_segments.csv`` =
  ``ser analyze --format csv --segments`` (each file's row, then its windows' rows).

Files are written atomically and privately: each goes to a temporary file in the same
folder (mode 0600, or stricter if the umask says so), is flushed and fsynced, then
renamed over the target with :func:`os.replace`. A failed export (full disk, no
permission, bad name) raises :class:`ExportError` naming the file and the reason and
leaves any earlier file at that path byte-identical; no temporary file is left behind.
Folders the export has to create are made 0700 (minus the umask).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from ser_engine.files.analysis import FileResult
from ser_engine.files.export import Format, ResultWriter, safe_text
from ser_engine.live.recorder import make_private_folder

__all__ = ["ExportError", "atomic_write_text", "export_csv", "export_json", "segments_path_for", "write_results"]


class ExportError(OSError):
    """An export could not be written; the message names the file and the reason."""


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
    """Return where the segments table of ``table_path`` goes: ``batch.csv`` -> ``batch_segments.csv``."""
    return table_path.with_name(table_path.stem + "_segments" + table_path.suffix)


def write_results(results: Sequence[FileResult], fh: TextIO, *, fmt: Format, labels: Sequence[str],
                  segments: bool, affect: Sequence[str] = ()) -> None:
    """Write ``results`` to ``fh`` with the CLI's exporter (see :class:`ser_engine.files.export.ResultWriter`).

    ``affect``: the model's affect dimensions (CSV columns and JSON keys, as ``ser analyze``); empty for none.
    """
    writer = ResultWriter(fh, fmt=fmt, labels=labels, segments=segments, affect=affect)
    writer.begin()
    for r in results:
        writer.write(r)
    writer.end()


def export_json(results: Sequence[FileResult], path: Path, *, labels: Sequence[str] | None = None,
                affect: Sequence[str] = ()) -> Path:
    """Write the results with their segments as JSON (``ser analyze --format json --segments``), atomically.

    ``affect``: the model's affect dimensions (their JSON keys, as ``ser analyze``); empty for none.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ExportError
        The file could not be written (any earlier file at ``path`` is unchanged).
    """
    labs = _labels(results, labels)

    def write(fh: TextIO) -> None:
        write_results(results, fh, fmt="json", labels=labs, segments=True, affect=affect)

    _atomic_write_many([(Path(path), write)])
    return Path(path)


def export_csv(results: Sequence[FileResult], path: Path, *, labels: Sequence[str] | None = None,
               affect: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write the table to ``path`` and the per-segment timeline beside it.

    ``affect``: the model's affect dimensions (their CSV columns, as ``ser analyze``); empty for none.

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
            write_results(results, fh, fmt="csv", labels=labs, segments=segments, affect=affect)

        return write

    _atomic_write_many([(path, writer(False)), (seg_path, writer(True))])
    return path, seg_path
