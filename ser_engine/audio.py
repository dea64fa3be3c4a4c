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
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import AudioError, ParameterError

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioClip",
    "AudioInfo",
    "StreamResampler",
    "audio_info",
    "find_audio_files",
    "iter_audio_blocks",
    "load_audio",
    "resample",
]

FloatArray = npt.NDArray[np.float32]

#: Extensions libsndfile decodes (lower case, with the dot).
SNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd",
     ".caf", ".w64", ".rf64", ".voc", ".sd2", ".nist", ".sph"}
)
#: Extensions only the optional audioread fallback may decode.
FALLBACK_EXTENSIONS = frozenset({".m4a", ".aac", ".mp4", ".wma", ".webm", ".mka"})
#: Every extension :func:`find_audio_files` collects from folders.
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | FALLBACK_EXTENSIONS

MIN_RATE = 8000
MAX_RATE = 192000
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
        return self.frames / self.sample_rate if self.sample_rate else 0.0


# ----------------------------------------------------------------------------- resampling
def resample(y: npt.ArrayLike, *, orig_sr: int, target_sr: int) -> FloatArray:
    """Resample a whole mono signal with soxr (HQ).

    Parameters
    ----------
    y : array_like, shape (n,)
    orig_sr, target_sr : int
        Rates in Hz.

    Returns
    -------
    ndarray, shape (round(n * target_sr / orig_sr),), float32
    """
    import soxr

    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"expected a 1-D signal, got shape {x.shape}")
    _check_rate(orig_sr, "orig_sr")
    _check_rate(target_sr, "target_sr")
    if orig_sr == target_sr or x.shape[0] == 0:
        return x.copy()
    return np.asarray(soxr.resample(x, orig_sr, target_sr, quality="HQ"), dtype=np.float32)


def _check_rate(rate: int, name: str) -> None:
    if not isinstance(rate, (int, np.integer)) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise ParameterError(f"{name} must be an integer in {MIN_RATE}-{MAX_RATE} Hz, got {rate!r}")


class StreamResampler:
    """Block-wise mono resampler (soxr ``ResampleStream``, HQ).

    The concatenation of :meth:`process` outputs followed by :meth:`flush`
    equals resampling the concatenated input in one go (up to soxr's
    rounding).

    Parameters
    ----------
    orig_sr, target_sr : int
        Rates in Hz (8-192 kHz).
    """

    def __init__(self, orig_sr: int, target_sr: int) -> None:
        _check_rate(orig_sr, "orig_sr")
        _check_rate(target_sr, "target_sr")
        self.orig_sr = int(orig_sr)
        self.target_sr = int(target_sr)
        self._stream: Any = None
        if self.orig_sr != self.target_sr:
            import soxr

            self._stream = soxr.ResampleStream(self.orig_sr, self.target_sr, 1, dtype="float32", quality="HQ")

    def process(self, block: npt.ArrayLike, *, last: bool = False) -> FloatArray:
        """Resample the next block.

        Parameters
        ----------
        block : array_like, shape (n,)
        last : bool
            True for the final block (flushes the filter's tail).

        Returns
        -------
        ndarray, shape (m,), float32
        """
        x = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
        if self._stream is None:
            return x.copy()
        return np.asarray(self._stream.resample_chunk(x, last=last), dtype=np.float32)

    def flush(self) -> FloatArray:
        """Return the samples still held in the filter (call once, at the end)."""
        return self.process(np.zeros(0, dtype=np.float32), last=True)

    def reset(self) -> None:
        if self._stream is not None:
            self._stream.clear()


# ----------------------------------------------------------------------------- decoding
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
    if not path.exists():
        return AudioError(f"{path}: file not found")
    if path.is_dir():
        return AudioError(f"{path}: is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        return AudioError(f"{path}: permission denied")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(512)
    except PermissionError:
        return AudioError(f"{path}: permission denied")
    except OSError as err:
        return AudioError(f"{path}: cannot read ({err.strerror or err})")
    if size == 0:
        return AudioError(f"{path}: empty file (0 bytes)")
    detail = ""
    if exc is not None:
        detail = str(getattr(exc, "error_string", "") or exc).strip()
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return AudioError(f"{path}: corrupt or truncated WAV file ({detail or 'cannot parse the header'})")
    if head[:4] == b"fLaC":
        return AudioError(f"{path}: corrupt or truncated FLAC file ({detail or 'cannot parse the header'})")
    if _looks_like_text(head):
        return AudioError(f"{path}: not an audio file (it contains text)")
    return AudioError(f"{path}: unsupported or unrecognised audio format ({detail or 'unknown format'})")


class _Source:
    """A decoder yielding float32 blocks of shape (frames, channels)."""

    sample_rate: int
    channels: int
    frames: int  # -1 when unknown
    format: str

    def blocks(self, frames: int) -> Iterator[npt.NDArray[np.float32]]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _SndfileSource(_Source):
    def __init__(self, path: Path) -> None:
        import soundfile as sf

        self._f = sf.SoundFile(str(path))
        self.sample_rate = int(self._f.samplerate)
        self.channels = int(self._f.channels)
        self.frames = int(self._f.frames)
        self.format = f"{self._f.format}/{self._f.subtype}"

    def blocks(self, frames: int) -> Iterator[npt.NDArray[np.float32]]:
        while True:
            data = self._f.read(frames, dtype="float32", always_2d=True)
            if data.shape[0] == 0:
                return
            yield data

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
        for buf in self._f:
            data = np.frombuffer(buf, dtype="<i2").astype(np.float32) / 32768.0
            yield data.reshape(-1, self.channels)

    def close(self) -> None:
        self._f.close()


def _open(path: Path) -> _Source:
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        return _SndfileSource(path)
    except Exception as exc:  # soundfile raises LibsndfileError, TypeError, RuntimeError...
        first: Exception = exc
    if path.suffix.lower() in FALLBACK_EXTENSIONS and importlib.util.find_spec("audioread") is not None:
        try:
            return _AudioreadSource(path)
        except Exception:  # fall through to the diagnosis of the first error
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
        is open.

    Yields
    ------
    ndarray, shape (m,), float32
        Consecutive blocks of the resampled mono signal (some may be empty).

    Raises
    ------
    AudioError
        Unreadable, unsupported or corrupt file, a sample rate outside
        8-192 kHz, or non-finite samples. The message names the file.
    """
    p = Path(path)
    _check_rate(sample_rate, "sample_rate")
    if not block_s > 0:
        raise ParameterError("block_s must be positive")
    src = _open(p)
    try:
        if not MIN_RATE <= src.sample_rate <= MAX_RATE:
            raise AudioError(f"{p}: sample rate {src.sample_rate} Hz is outside the supported 8-192 kHz")
        if src.channels < 1:
            raise AudioError(f"{p}: the file has no channels")
        if info is not None:
            info.update(source_rate=src.sample_rate, channels=src.channels, format=src.format)
        frames = max(1024, min(int(block_s * src.sample_rate), _MAX_BLOCK_VALUES // src.channels))
        resampler = StreamResampler(src.sample_rate, sample_rate)
        done = 0
        try:
            for data in src.blocks(frames):
                mono = data[:, 0] if src.channels == 1 else data.mean(axis=1, dtype=np.float32)
                if not np.isfinite(mono).all():
                    bad = done + int(np.argmin(np.isfinite(mono)))
                    raise AudioError(
                        f"{p}: contains NaN or infinite samples (first at {bad / src.sample_rate:.3f} s)"
                    )
                done += mono.shape[0]
                yield resampler.process(mono)
        except AudioError:
            raise
        except (RuntimeError, OSError, ValueError) as exc:
            reason = str(getattr(exc, "error_string", "") or exc).strip() or type(exc).__name__
            raise AudioError(f"{p}: decoding failed after {done / src.sample_rate:.2f} s ({reason})") from exc
        if done == 0:
            raise AudioError(f"{p}: the file holds no audio samples (0 frames)")
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


# ----------------------------------------------------------------------------- discovery
def find_audio_files(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively) into audio files.

    A file given explicitly is kept whatever its extension (decoding will
    say if it is not audio); folders contribute files whose extension is in
    :data:`AUDIO_EXTENSIONS`, sorted, skipping hidden files.

    Parameters
    ----------
    paths : path or iterable of paths

    Returns
    -------
    files : list of Path
        In the order given, each folder's files sorted; no duplicates.
    problems : list of (Path, str)
        Paths that do not exist, cannot be listed, or folders without audio,
        each with a message naming the path and the reason.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    seen: set[Path] = set()
    problems: list[tuple[Path, str]] = []

    def add(f: Path) -> None:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            files.append(f)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found: list[Path] = []
            errors: list[OSError] = []
            for root, dirs, names in os.walk(p, onerror=errors.append):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in names:
                    if name.startswith(".") or Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
                        continue
                    found.append(Path(root) / name)
            if errors and not found:
                err = errors[0]
                problems.append((p, f"{p}: cannot list folder ({err.strerror or err})"))
            elif not found:
                problems.append((p, f"{p}: no audio files found in this folder"))
            for f in sorted(found):
                add(f)
        elif p.exists():
            add(p)
        else:
            problems.append((p, f"{p}: file not found"))
    return files, problems


def describe_extensions(exts: Sequence[str] | frozenset[str] = SNDFILE_EXTENSIONS) -> str:
    """Human-readable list of extensions, for messages."""
    return ", ".join(sorted(e.lstrip(".") for e in exts))
