"""Live recordings: the 16 kHz audio the model hears (WAV) and its predictions (CSV).

A :class:`Recorder` is written from the live worker thread (never from the audio
callback). Recordings survive faults. The WAV is written straight to its file (no
user-space buffer) and its RIFF/data sizes are rewritten, and the CSV flushed, every
:data:`SYNC_SECONDS` of audio, so a killed process leaves files that any WAV reader
opens, short of at most that interval. A write that fails (disk full, quota, I/O
error) raises ``OSError``; the session then calls :meth:`Recorder.abort` (the files
keep what was written, the WAV truncated to whole samples with a correct header) and
reports :meth:`Recorder.failure`, a :class:`RecordingError` that names the file, the
reason and what was kept. Recordings are private: files are created 0600 and missing
folders 0700 (a stricter umask still applies). A recording never replaces an existing file
unless asked to (``overwrite=True``): the files are created exclusively, so an earlier
recording of the same name is refused with a :class:`RecordingExistsError`, untouched.

The CSV's rows are :func:`ser_engine.files.export.prediction_row`.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from ser_engine.errors import AudioError
from ser_engine.files.export import prediction_header, prediction_row
from ser_engine.live.stream import Prediction

__all__ = ["SYNC_SECONDS", "Recorder", "RecordingError", "RecordingExistsError", "make_private_folder"]

SYNC_SECONDS = 1.0  # WAV header rewritten and CSV flushed at least this often (seconds of audio)

class RecordingError(AudioError):
    """A recording stopped because its files could not be written (disk full, I/O error...).

    The message names the file, the reason and what was kept. The live session
    itself goes on.

    Attributes
    ----------
    wav_path, csv_path : Path or None
        The recording's files (kept, holding what was written).
    seconds : float
        Audio kept in the WAV, in seconds.
    """

    def __init__(self, message: str, *, wav_path: Path | None = None, csv_path: Path | None = None,
                 seconds: float = 0.0) -> None:
        super().__init__(message)
        self.wav_path = wav_path
        self.csv_path = csv_path
        self.seconds = seconds


class RecordingExistsError(RecordingError):
    """A recording's file already exists and replacing it was not asked for; nothing was touched.

    Attributes
    ----------
    path : Path
        The existing file.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: already exists; not replaced (choose another name)")
        self.path = path


def _os_reason(exc: BaseException) -> str:
    """"disk full (No space left on device)" for ENOSPC/EDQUOT, else the OS's words."""
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return f"disk full ({text})"
        if exc.errno == errno.EFBIG:
            return f"file too large ({text})"
        return text
    return str(exc) or type(exc).__name__


def make_private_folder(folder: str | Path) -> Path:
    """Create ``folder`` and any missing parents with mode 0700 (umask still applies).

    Folders that already exist are left as they are.

    Raises
    ------
    OSError
        A folder cannot be created (or the path is not a folder).
    """
    folder = Path(folder)
    missing: list[Path] = []
    p = folder
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o700)
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    return folder


def _create_private(path: Path, *, overwrite: bool) -> int:
    """Open ``path`` for writing, readable by the owner only; returns the fd.

    Created exclusively (``FileExistsError`` when it exists, also as a link), or created or
    truncated with ``overwrite``.
    """
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)  # a new file gets 0600 minus the umask
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077 and hasattr(os, "fchmod"):  # an existing file we overwrite becomes private too
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode & 0o700)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _WavWriter:
    """16-bit mono PCM WAV written straight to a file descriptor.

    Samples go to the file as they come (no user-space buffer); :meth:`sync`
    rewrites the RIFF and data sizes, so the file is a valid WAV of everything
    up to the last sync even if the process is killed.
    """

    HEADER = 44
    MAX_DATA = 0xFFFFFFFF - 36  # what a RIFF size can describe (about 37 h at 16 kHz)

    def __init__(self, path: Path, *, sample_rate: int, overwrite: bool) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.data_bytes = 0
        self._synced = -1
        self._fd = _create_private(path, overwrite=overwrite)
        try:
            self._write_all(self._header(0), data=False)
        except BaseException:
            os.close(self._fd)
            with contextlib.suppress(OSError):  # ours, and empty: leave nothing behind
                path.unlink()
            raise

    def _header(self, n: int) -> bytes:
        sr = self.sample_rate
        return (b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt "
                + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16) + b"data" + struct.pack("<I", n))

    def _write_all(self, buf: bytes, *, data: bool = True) -> None:
        view = memoryview(buf)
        while view:
            n = os.write(self._fd, view)  # may write part and raise on the next call (disk full)
            if data:
                self.data_bytes += n
            view = view[n:]

    def write(self, block: npt.NDArray[np.float32]) -> None:
        """Append float samples in [-1, 1] (clipped), shape ``(n,)``, as 16-bit PCM."""
        pcm = np.rint(np.clip(block, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        if self.data_bytes + len(pcm) > self.MAX_DATA:
            raise OSError(errno.EFBIG, "a WAV file cannot hold more than 4 GiB (about 37 hours)", str(self.path))
        self._write_all(pcm)

    @property
    def samples(self) -> int:
        return self.data_bytes // 2

    def sync(self) -> None:
        """Rewrite the RIFF and data sizes for the whole samples written so far."""
        n = self.data_bytes - self.data_bytes % 2
        if n != self._synced:
            os.pwrite(self._fd, struct.pack("<I", 36 + n), 4)
            os.pwrite(self._fd, struct.pack("<I", n), 40)
            self._synced = n

    def close(self, *, failed: bool = False) -> None:
        """Write the final sizes and close.

        After a failed write (``failed``) the file is first cut back to whole samples, and
        errors are not raised (the descriptor is closed in any case).
        """
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        try:
            if failed:
                with contextlib.suppress(OSError):
                    self.data_bytes -= self.data_bytes % 2
                    os.ftruncate(fd, self.HEADER + self.data_bytes)
                with contextlib.suppress(OSError):
                    self._fd = fd
                    self.sync()
            else:
                self._fd = fd
                self.sync()
        finally:
            self._fd = -1
            os.close(fd)


class Recorder:
    """A WAV + CSV recording, written from the live worker thread (see the module docstring on faults).

    Parameters
    ----------
    wav_path : Path
        The 16-bit mono WAV to write.
    csv_path : Path or None
        The predictions' CSV (:func:`ser_engine.files.export.prediction_header`), or None for none.
    sample_rate : int
        Rate of the audio given to :meth:`write_audio`.
    labels : tuple of str
        The model's labels (one ``p_<label>`` column each).
    affect : tuple of str
        The model's affect dimensions (one column each, after the labels'); empty for none.
    stream_offset : int
        Stream sample at which the recording starts (prediction times are made relative to it).
    sync_seconds : float
        Seconds of audio between two syncs of the files.
    overwrite : bool
        Replace files that already exist (else they are refused, untouched).

    Raises
    ------
    RecordingExistsError
        A file exists and ``overwrite`` is False (nothing is touched or left behind).
    RecordingError
        A file cannot be created (nothing is left behind).
    """

    def __init__(self, wav_path: Path, csv_path: Path | None, *, sample_rate: int, labels: tuple[str, ...],
                 stream_offset: int, sync_seconds: float = SYNC_SECONDS, overwrite: bool = False,
                 affect: tuple[str, ...] = ()) -> None:
        self.wav_path = wav_path
        self.csv_path = csv_path
        self.sample_rate = sample_rate
        self.labels = labels
        self.affect = affect
        self.offset = stream_offset  # stream sample where the recording starts
        self.rows = 0
        self._sync_every = max(1, round(sync_seconds * sample_rate))
        self._last_sync = 0
        self._csv_file: TextIO | None = None
        self._csv: Any = None
        try:
            make_private_folder(wav_path.parent)
            self._wav = _WavWriter(wav_path, sample_rate=sample_rate, overwrite=overwrite)
        except FileExistsError as exc:
            if not wav_path.is_dir():
                raise RecordingExistsError(wav_path) from exc
            raise RecordingError(f"{wav_path}: cannot create the recording (is a folder)") from exc
        except OSError as exc:  # (a file that could not be opened is not touched)
            raise RecordingError(f"{wav_path}: cannot create the recording ({_os_reason(exc)})",
                                 wav_path=None, csv_path=None) from exc
        if csv_path is not None:
            created = False
            try:
                make_private_folder(csv_path.parent)
                fd = _create_private(csv_path, overwrite=overwrite)
                created = True
                self._csv_file = os.fdopen(fd, "w", newline="", encoding="utf-8")
                self._csv = csv.writer(self._csv_file)
                self._csv.writerow(prediction_header(labels=labels, affect=affect))
                self._csv_file.flush()
            except OSError as exc:
                self._wav.close(failed=True)
                self._discard(wav_path)
                if self._csv_file is not None:
                    with contextlib.suppress(OSError):
                        self._csv_file.close()
                if created:
                    self._discard(csv_path)
                if isinstance(exc, FileExistsError) and not csv_path.is_dir():
                    raise RecordingExistsError(csv_path) from exc
                reason = "is a folder" if isinstance(exc, FileExistsError) else _os_reason(exc)
                raise RecordingError(f"{csv_path}: cannot create the predictions file ({reason})") from exc

    @staticmethod
    def _discard(path: Path) -> None:
        """Remove a file this recorder just created and could not start (nothing recorded in it)."""
        with contextlib.suppress(OSError):
            path.unlink()

    @property
    def samples(self) -> int:
        """Samples written so far."""
        return self._wav.samples

    @property
    def seconds(self) -> float:
        """Seconds of audio written so far."""
        return self._wav.samples / self.sample_rate

    @staticmethod
    @contextlib.contextmanager
    def _naming(path: Path | None) -> Iterator[None]:
        """Let an OSError raised inside name ``path`` (the file that failed)."""
        try:
            yield
        except OSError as exc:
            if not exc.filename and path is not None:
                exc.filename = str(path)
            raise

    def write_audio(self, block: npt.NDArray[np.float32]) -> None:
        """Append 16 kHz samples, shape ``(n,)``; syncs the files every ``sync_seconds`` of audio."""
        if block.shape[0]:
            with self._naming(self.wav_path):
                self._wav.write(block)
            if self._wav.samples - self._last_sync >= self._sync_every:
                self.sync()

    def sync(self) -> None:
        """Make the files complete up to now (WAV sizes rewritten, CSV flushed)."""
        self._last_sync = self._wav.samples
        with self._naming(self.wav_path):
            self._wav.sync()
        if self._csv_file is not None:
            with self._naming(self.csv_path):
                self._csv_file.flush()

    def write_prediction(self, p: Prediction) -> None:
        """Append one prediction to the CSV (times from the recording's start; none before it)."""
        if self._csv is None:
            return
        off = self.offset / self.sample_rate
        start, end = p.start_s - off, p.end_s - off
        if end <= 0:
            return
        with self._naming(self.csv_path):
            self._csv.writerow(prediction_row(p, start_s=start, end_s=end, labels=self.labels,
                                             affect=self.affect))
        self.rows += 1

    def close(self) -> tuple[Path, Path | None]:
        """Close both files (sizes written, CSV flushed).

        Raises
        ------
        OSError
            The last data could not be written; both files are closed anyway.
        """
        try:
            with self._naming(self.wav_path):
                self._wav.close()
        finally:
            if self._csv_file is not None:
                f, self._csv_file = self._csv_file, None
                with self._naming(self.csv_path):
                    f.close()
        return self.wav_path, self.csv_path

    def abort(self) -> None:
        """Close after a failed write, keeping what was written; never raises."""
        self._wav.close(failed=True)
        if self._csv_file is not None:
            f, self._csv_file = self._csv_file, None
            with contextlib.suppress(OSError, ValueError):
                f.flush()
            with contextlib.suppress(OSError, ValueError):
                f.close()
            if not f.closed:  # the buffer could not be written: drop it, close the descriptor
                with contextlib.suppress(OSError):
                    os.close(f.fileno())

    def failure(self, exc: BaseException) -> RecordingError:
        """Return the error to report when writing failed with ``exc`` (call after :meth:`abort`)."""
        where = getattr(exc, "filename", None) or self.wav_path
        kept = f"{self.seconds:.1f} s of audio kept in {self.wav_path}"
        if self.csv_path is not None:
            kept += f", {self.rows} predictions in {self.csv_path}"
        return RecordingError(f"{where}: recording stopped: {_os_reason(exc)}; {kept}",
                              wav_path=self.wav_path, csv_path=self.csv_path, seconds=self.seconds)
