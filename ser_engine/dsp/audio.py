"""Audio decoding, downmixing and resampling.

Files are decoded with soundfile (libsndfile >= 1.1: WAV 8/16/24/32-bit int
and float, FLAC, Ogg Vorbis/Opus, MP3, AIFF, CAF, ...). When libsndfile does
not know a format and the optional ``audioread`` package is importable (it
comes with librosa; it needs a system decoder such as ffmpeg), it is tried as
a fallback. Nothing here imports librosa.

Every file is downmixed to mono (mean of the channels) and resampled with
soxr (``HQ``) to the target rate, block by block, so memory stays bounded
for files of any length (:func:`iter_audio_blocks`).

Non-finite samples (NaN, +/-inf, possible in float WAV files) are rejected
with an :class:`~ser_engine.errors.AudioError` naming the file and the time
of the first bad sample: silently replacing them would hide a broken
recording behind a plausible-looking result.

Every failure raises :class:`~ser_engine.errors.AudioError` whose message
names the file and the cause.

Resampling lives in :mod:`ser_engine.dsp.resample` and file discovery in
:mod:`ser_engine.files.paths`; their public names are importable from here too.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.dsp.resample import MAX_RATE, MIN_RATE, StreamResampler, check_rate, resample
from ser_engine.errors import AudioError, ParameterError
from ser_engine.files.paths import (
    AUDIO_EXTENSIONS,
    FALLBACK_EXTENSIONS,
    SNDFILE_EXTENSIONS,
    display_path,
    find_audio_files,
    stat_problem,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "FALLBACK_EXTENSIONS",
    "MAX_RATE",
    "MIN_RATE",
    "SNDFILE_EXTENSIONS",
    "AudioClip",
    "AudioInfo",
    "StreamResampler",
    "audio_info",
    "display_path",
    "find_audio_files",
    "iter_audio_blocks",
    "load_audio",
    "resample",
]

FloatArray = npt.NDArray[np.float32]

_MAX_BLOCK_VALUES = 1 << 22  # decoded values (frames x channels) per block: 16 MB of float32


@dataclass(frozen=True)
class AudioClip:
    """A decoded clip.

    Attributes
    ----------
    samples : ndarray, shape (n,), float32
        Mono signal at ``sample_rate``.
    sample_rate : int
    source_rate : int
        The file's own sample rate.
    channels : int
        The file's channel count (before the downmix).
    path : Path or None
    """

    samples: FloatArray
    sample_rate: int
    source_rate: int
    channels: int
    path: Path | None = None

    @property
    def duration_s(self) -> float:
        """Length of the clip in seconds."""
        return float(self.samples.shape[0]) / self.sample_rate


@dataclass(frozen=True)
class AudioInfo:
    """Header information: ``frames`` at ``sample_rate`` (the file's own), ``channels``, ``format``."""

    path: Path
    frames: int
    sample_rate: int
    channels: int
    format: str

    @property
    def duration_s(self) -> float:
        """Length in seconds from the header (0 when the header gives no rate)."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def _diagnose(path: Path, exc: Exception | None) -> AudioError:
    """Turn an open failure into an AudioError naming the file and the cause."""
    problem = stat_problem(path)  # never opens a FIFO or a device
    if problem is not None:
        return AudioError(problem)
    name = display_path(path)
    if not path.exists():
        return AudioError(f"{name}: file not found")
    if path.is_dir():
        return AudioError(f"{name}: is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        return AudioError(f"{name}: permission denied")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(512)
    except PermissionError:
        return AudioError(f"{name}: permission denied")
    except OSError as err:
        return AudioError(f"{name}: cannot read ({err.strerror or err})")
    if size == 0:
        return AudioError(f"{name}: empty file (0 bytes)")
    detail = ""
    if exc is not None:
        detail = str(getattr(exc, "error_string", "") or exc).strip()
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return AudioError(f"{name}: corrupt or truncated WAV file ({detail or 'cannot parse the header'})")
    if head[:4] == b"fLaC":
        return AudioError(f"{name}: corrupt or truncated FLAC file ({detail or 'cannot parse the header'})")
    if _looks_like_text(head):
        return AudioError(f"{name}: not an audio file (it contains text)")
    return AudioError(f"{name}: unsupported or unrecognised audio format ({detail or 'unknown format'})")


class _Source:
    """A decoder yielding float32 blocks of shape (frames, channels)."""

    sample_rate: int
    channels: int
    frames: int  # -1 when unknown
    format: str
    truncation: str | None = None  # why the header says the file is cut short, when it does

    def blocks(self, frames: int) -> Iterator[npt.NDArray[np.float32]]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


_WAV_DATA_RE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _truncation_note(f: Any) -> str | None:
    """Tell whether libsndfile's header log shows a truncated WAV or Ogg file (it decodes them silently).

    Returns the reason, or None when nothing suggests truncation.
    """
    try:
        log = str(f.extra_info)
    except RuntimeError:  # pragma: no cover - libsndfile's log is only a hint
        return None
    m = _WAV_DATA_RE.search(log)
    if m is not None:
        declared, actual = int(m.group(1)), int(m.group(2))
        # 0 / 0xFFFFFFFF-like sizes are streaming headers, not truncation
        if actual < declared < 0x7FFFF000 and declared - actual > 64:
            frames, rate = int(f.frames), int(f.samplerate)
            if frames > 0 and rate > 0:
                announced = declared / (actual / frames) / rate
                return f"the file is truncated (its header announces {announced:.1f} s)"
            return f"the file is truncated (its header announces {declared} bytes of audio, {actual} are there)"
    if "Last page lacks an end-of-stream bit" in log:
        return "the file is truncated (the Ogg stream ends without its end-of-stream page)"
    return None


class _SndfileSource(_Source):
    """A file libsndfile has opened (``sf.SoundFile``), read in blocks."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self.sample_rate = int(self._f.samplerate)
        self.channels = int(self._f.channels)
        self.frames = int(self._f.frames)
        self.format = f"{self._f.format}/{self._f.subtype}"
        self.truncation = _truncation_note(self._f)

    def blocks(self, frames: int) -> Iterator[npt.NDArray[np.float32]]:
        # Read in steps of at most one second so that a decoding error mid-file
        # loses at most the step it happened in (the rest was already yielded
        # or is yielded before the error is raised).
        step = max(1024, min(frames, self.sample_rate))
        while True:
            parts: list[npt.NDArray[np.float32]] = []
            got = 0
            try:
                while got < frames:
                    data = self._f.read(min(step, frames - got), dtype="float32", always_2d=True)
                    if data.shape[0] == 0:
                        break
                    parts.append(data)
                    got += data.shape[0]
            except Exception:  # re-raised below, after what decoded before the error
                if parts:
                    yield np.concatenate(parts) if len(parts) > 1 else parts[0]
                raise
            if not parts:
                return
            yield np.concatenate(parts) if len(parts) > 1 else parts[0]
            if got < frames:
                return

    def close(self) -> None:
        self._f.close()


class _AudioreadSource(_Source):  # pragma: no cover - depends on a system decoder
    def __init__(self, path: Path) -> None:
        import audioread

        self._f = audioread.audio_open(str(path))
        self.sample_rate = int(self._f.samplerate)
        self.channels = int(self._f.channels)
        self.frames = -1
        self.format = "audioread"

    def blocks(self, frames: int) -> Iterator[npt.NDArray[np.float32]]:
        del frames  # audioread yields buffers of its own size
        from audioread.exceptions import DecodeError

        try:
            for buf in self._f:
                data = np.frombuffer(buf, dtype="<i2").astype(np.float32) / 32768.0
                yield data.reshape(-1, self.channels)
        except DecodeError as exc:  # a decoding failure, as libsndfile reports one
            raise RuntimeError(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        self._f.close()


def _open(path: Path) -> _Source:
    problem = stat_problem(path)  # FIFOs, devices, sockets, loops: refused before any open()
    if problem is not None:
        raise AudioError(problem)
    import soundfile as sf

    try:
        # bytes: libsndfile gets the name as it is on disk, even when it is not valid UTF-8
        f = sf.SoundFile(os.fsencode(path))
    except (RuntimeError, OSError, TypeError, ValueError) as exc:
        # what soundfile raises for a file it cannot open: LibsndfileError (a RuntimeError)
        # for unknown or corrupt formats, TypeError for a ``.raw`` name (no header to read)
        first: Exception = exc
    else:
        return _SndfileSource(f)
    if path.suffix.lower() in FALLBACK_EXTENSIONS and importlib.util.find_spec("audioread") is not None:
        from audioread.exceptions import DecodeError

        try:
            return _AudioreadSource(path)
        except (DecodeError, OSError, EOFError):  # pragma: no cover - fall through to the diagnosis of the first error
            pass
    raise _diagnose(path, first) from first


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header only.

    Raises
    ------
    AudioError
    """
    p = Path(path)
    src = _open(p)
    try:
        return AudioInfo(path=p, frames=src.frames, sample_rate=src.sample_rate, channels=src.channels,
                         format=src.format)
    finally:
        src.close()


def iter_audio_blocks(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = 16000,
    block_s: float = 30.0,
    info: dict[str, Any] | None = None,
    partial_ok: bool = False,
) -> Iterator[FloatArray]:
    """Decode a file block by block: mono, resampled, float32.

    Memory is bounded by the block size whatever the file length.

    Parameters
    ----------
    path : path-like
    sample_rate : int
        Output rate in Hz.
    block_s : float
        Seconds of source audio decoded per block (capped so that one block
        holds at most 4 M decoded values across channels).
    info : dict, optional
        Filled with ``source_rate``, ``channels`` and ``format`` once the file
        is open, and with ``warning`` (str) when the audio ends early: the file
        is truncated, or (with ``partial_ok``) decoding failed part-way. The
        warning reads ``"decoding stopped at 12.3 s: <reason>"``.
    partial_ok : bool
        True to end the stream normally, after what decoded, when decoding fails
        part-way through (the reason goes to ``info["warning"]``); False to raise.
        A failure before the first sample always raises.

    Yields
    ------
    ndarray, shape (m,), float32
        Consecutive blocks of the resampled mono signal (some may be empty).

    Raises
    ------
    AudioError
        Not a regular file (FIFO, device, socket: refused without opening it),
        unreadable, unsupported or corrupt file, a sample rate outside
        8-192 kHz, or non-finite samples. The message names the file.
    """
    p = Path(path)
    name = display_path(p)
    check_rate(sample_rate, "sample_rate")
    if not block_s > 0:
        raise ParameterError("block_s must be positive")
    src = _open(p)
    try:
        if not MIN_RATE <= src.sample_rate <= MAX_RATE:
            raise AudioError(f"{name}: sample rate {src.sample_rate} Hz is outside the supported 8-192 kHz")
        if src.channels < 1:
            raise AudioError(f"{name}: the file has no channels")
        if info is not None:
            info.update(source_rate=src.sample_rate, channels=src.channels, format=src.format)
        frames = max(1024, min(int(block_s * src.sample_rate), _MAX_BLOCK_VALUES // src.channels))
        resampler = StreamResampler(src.sample_rate, sample_rate)
        done = 0
        stopped: str | None = None
        decoded = src.blocks(frames)
        while True:
            try:  # only the decoder: an error in our own processing below is a bug, not a bad file
                data = next(decoded, None)
            except (RuntimeError, OSError, ValueError) as exc:  # libsndfile's LibsndfileError is a RuntimeError
                reason = str(getattr(exc, "error_string", "") or exc).strip() or type(exc).__name__
                if not partial_ok or done == 0:
                    raise AudioError(
                        f"{name}: decoding failed after {done / src.sample_rate:.2f} s ({reason})"
                    ) from exc
                stopped = reason
                break
            if data is None:
                break
            mono = data[:, 0] if src.channels == 1 else data.mean(axis=1, dtype=np.float32)
            if not np.isfinite(mono).all():
                bad = done + int(np.argmin(np.isfinite(mono)))
                raise AudioError(f"{name}: contains NaN or infinite samples (first at {bad / src.sample_rate:.3f} s)")
            done += mono.shape[0]
            yield resampler.process(mono)
        if done == 0:
            raise AudioError(f"{name}: the file holds no audio samples (0 frames)")
        if stopped is None and src.frames > 0 and done < src.frames:
            stopped = (f"the file is truncated (its header announces {src.frames / src.sample_rate:.1f} s)")
        if stopped is None:
            stopped = src.truncation
        if stopped is not None and info is not None:
            info["warning"] = f"decoding stopped at {done / src.sample_rate:.1f} s: {stopped}"
        yield resampler.flush()
    finally:
        src.close()


def load_audio(path: str | os.PathLike[str], *, sample_rate: int = 16000) -> AudioClip:
    """Decode a whole file to mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : path-like
    sample_rate : int
        Output rate in Hz (8-192 kHz).

    Returns
    -------
    AudioClip

    Raises
    ------
    AudioError
        See :func:`iter_audio_blocks`.
    """
    info: dict[str, Any] = {}
    blocks = list(iter_audio_blocks(path, sample_rate=sample_rate, info=info))
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return AudioClip(
        samples=samples.astype(np.float32, copy=False),
        sample_rate=sample_rate,
        source_rate=int(info["source_rate"]),
        channels=int(info["channels"]),
        path=Path(path),
    )


