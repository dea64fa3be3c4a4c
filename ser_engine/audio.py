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

import errno
import importlib.util
import os
import re
import stat
from collections.abc import Iterable, Iterator
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
    "display_path",
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


# ----------------------------------------------------------------------------- paths
def display_path(path: str | os.PathLike[str]) -> str:
    """A path as valid Unicode text, for messages, JSON and CSV.

    Names that are not valid UTF-8 on disk (``os.fsdecode`` keeps their bytes as
    lone surrogates, which no UTF-8 writer accepts) are shown with each such byte
    as a backslash escape: the file ``b"caf\\xe9.wav"`` becomes ``caf\\xe9.wav``.
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


def _stat_problem(path: Path) -> str | None:
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
    problem = _stat_problem(path)  # never opens a FIFO or a device
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
    """A truncated WAV or Ogg file, as libsndfile's header log shows it (it decodes them silently).

    Returns the reason, or None when nothing suggests truncation.
    """
    try:
        log = str(f.extra_info)
    except Exception:  # pragma: no cover - the log is only a hint
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
    def __init__(self, path: Path) -> None:
        import soundfile as sf

        # bytes: libsndfile gets the name as it is on disk, even when it is not valid UTF-8
        self._f = sf.SoundFile(os.fsencode(path))
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
            except Exception:
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
        for buf in self._f:
            data = np.frombuffer(buf, dtype="<i2").astype(np.float32) / 32768.0
            yield data.reshape(-1, self.channels)

    def close(self) -> None:
        self._f.close()


def _open(path: Path) -> _Source:
    problem = _stat_problem(path)  # FIFOs, devices, sockets, loops: refused before any open()
    if problem is not None:
        raise AudioError(problem)
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
    _check_rate(sample_rate, "sample_rate")
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
        try:
            for data in src.blocks(frames):
                mono = data[:, 0] if src.channels == 1 else data.mean(axis=1, dtype=np.float32)
                if not np.isfinite(mono).all():
                    bad = done + int(np.argmin(np.isfinite(mono)))
                    raise AudioError(
                        f"{name}: contains NaN or infinite samples (first at {bad / src.sample_rate:.3f} s)"
                    )
                done += mono.shape[0]
                yield resampler.process(mono)
        except AudioError:
            raise
        except (RuntimeError, OSError, ValueError) as exc:
            reason = str(getattr(exc, "error_string", "") or exc).strip() or type(exc).__name__
            if not partial_ok or done == 0:
                raise AudioError(f"{name}: decoding failed after {done / src.sample_rate:.2f} s ({reason})") from exc
            stopped = reason
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


# ----------------------------------------------------------------------------- discovery
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
        msg = _stat_problem(f)
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
