"""Paths: finding audio files in folders, refusing special files unopened, printable names."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = ["AUDIO_EXTENSIONS", "FALLBACK_EXTENSIONS", "SNDFILE_EXTENSIONS", "display_path", "find_audio_files",
           "stat_problem"]

#: Extensions libsndfile decodes (lower case, with the dot).
SNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
     ".caf", ".w64", ".rf64", ".voc", ".sd2", ".nist", ".sph"}
)
#: Extensions only the optional audioread fallback may decode.
FALLBACK_EXTENSIONS = frozenset({".m4a", ".aac", ".mp4", ".wma", ".webm", ".mka"})
#: Every extension :func:`find_audio_files` collects from folders.
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | FALLBACK_EXTENSIONS


def display_path(path: str | os.PathLike[str]) -> str:
    r"""Return a path as valid Unicode text, for messages, JSON and CSV.

    Names that are not valid UTF-8 on disk (``os.fsdecode`` keeps their bytes as
    lone surrogates, which no UTF-8 writer accepts) are shown with each such byte
    as a backslash escape: the file ``b"caf\xe9.wav"`` becomes ``caf\xe9.wav``.
    Valid names are returned unchanged.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
    """
    text = os.fspath(path)
    if isinstance(text, bytes):  # pragma: no cover - callers pass str paths
        return text.decode("utf-8", "backslashreplace")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"


def stat_problem(path: Path) -> str | None:
    """Why ``path`` cannot be analysed as a regular file, without opening it; None when it can."""
    name = display_path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{name}: symlink loop (too many levels of symbolic links)"
        if exc.errno == errno.ENOENT:
            return f"{name}: file not found" + (" (dangling symlink)" if os.path.islink(path) else "")
        if exc.errno == errno.EACCES:
            return f"{name}: permission denied"
        if exc.errno == errno.ENAMETOOLONG:
            return f"{name}: file name too long"
        return f"{name}: cannot read ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return f"{name}: is a directory, not an audio file"
    if not stat.S_ISREG(st.st_mode):
        return f"{name}: not a regular file ({_kind(st.st_mode)}); refused without reading it"
    return None


# ----------------------------------------------------------------------------- decoding
def find_audio_files(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively) into audio files.

    A file given explicitly is kept whatever its extension (decoding will
    say if it is not audio); folders contribute files whose extension is in
    :data:`AUDIO_EXTENSIONS`, sorted, skipping hidden files. Nothing is
    opened for reading here: FIFOs, devices and sockets (given or found),
    symlink loops, dangling links and unreadable sub-folders each become a
    problem naming the path, and the search goes on.

    Parameters
    ----------
    paths : path or iterable of paths

    Returns
    -------
    files : list of Path
        In the order given, each folder's files sorted; no duplicates.
    problems : list of (Path, str)
        Paths that do not exist, are not regular files, cannot be listed, or
        folders without audio, each with a message naming the path and the reason.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    seen: set[Path] = set()
    problems: list[tuple[Path, str]] = []
    reported: set[Path] = set()

    def problem(f: Path, msg: str) -> None:
        if f not in reported:
            reported.add(f)
            problems.append((f, msg))

    def add(f: Path) -> None:
        msg = stat_problem(f)
        if msg is not None:
            problem(f, msg)
            return
        try:
            key = f.resolve()
        except (OSError, RuntimeError):  # a loop appearing between stat and resolve
            key = Path(os.path.abspath(f))
        if key not in seen:
            seen.add(key)
            files.append(f)

    for raw in paths:
        p = Path(raw)
        name = display_path(p)
        try:  # os.stat, not Path.is_dir/exists: those raise on EACCES
            is_dir = stat.S_ISDIR(os.stat(p).st_mode)
        except OSError:
            is_dir = False
        if is_dir:
            found: list[Path] = []
            errors: list[OSError] = []
            for root, dirs, names in os.walk(p, onerror=errors.append):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for fname in names:
                    if fname.startswith(".") or Path(fname).suffix.lower() not in AUDIO_EXTENSIONS:
                        continue
                    found.append(Path(root) / fname)
            for err in errors:
                where = Path(err.filename) if err.filename else p
                problem(where, f"{display_path(where)}: cannot list folder ({err.strerror or err})")
            if not found and not errors:
                problem(p, f"{name}: no audio files found in this folder")
            for f in sorted(found):
                add(f)
        else:
            add(p)  # a problem (missing, loop, not regular, unreadable) is reported by add
    return files, problems
