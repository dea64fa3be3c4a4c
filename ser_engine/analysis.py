"""File analysis: the dominant emotion of each file over its speech.

A file is decoded block by block (bounded memory), cut into the analysis
windows training uses (:func:`ser_engine.features.frame_windows`: starts
``0, hop, 2*hop, ...`` plus a final window ending at the file's end; a clip
no longer than one window is centre-padded), every window is gated
(:func:`ser_engine.gate.window_is_speech`), and the model classifies the
speech windows in batches (consecutive windows share their feature frames,
so only each hop's new frames are computed). The file's probabilities are the mean over its
speech windows; its label is their arg-max. A file without speech is a
success with ``label=None`` and ``speech_s=0``: the engine says there is no
speech rather than inventing an emotion.

:func:`analyze_file` never raises for a bad file: it returns
``FileResult(ok=False, error=...)`` whose message names the file and the
reason, so a batch carries on. A model that outputs NaN or infinity makes
the file fail ("the model produced non-finite output"), never a label. A
truncated or partly corrupt file yields the analysis of what decoded, with
``ok=True`` and ``warning="decoding stopped at 12.3 s: <reason>"``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.audio import display_path, find_audio_files, iter_audio_blocks
from ser_engine.config import FeatureConfig
from ser_engine.errors import ModelError, ParameterError, SerError
from ser_engine.features import Featurizer, fit_to_length
from ser_engine.gate import window_is_speech
from ser_engine.model import EmotionModel

__all__ = [
    "MAX_WORKERS",
    "FileResult",
    "Segment",
    "WindowFeatures",
    "analyze_file",
    "analyze_paths",
    "iter_window_features",
    "iter_windows",
]

FloatArray = npt.NDArray[np.float32]
BATCH = 32
#: Most parallel files :func:`analyze_paths` runs (more threads only add memory; OpenBLAS
#: supports at most 64 calling threads and corrupts its heap beyond).
MAX_WORKERS = min(32, 4 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class Segment:
    """One analysed window of a file (seconds from the file's start).

    ``uncertain``: the window's top probability is below the model's
    ``uncertainty_threshold`` (``label`` still holds the arg-max).
    """

    start_s: float
    end_s: float
    speech: bool
    label: str | None
    probabilities: dict[str, float] = field(default_factory=dict)
    uncertain: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_s": round(self.start_s, 4),
            "end_s": round(self.end_s, 4),
            "speech": self.speech,
            "label": self.label,
            "uncertain": self.uncertain,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
        }


@dataclass(frozen=True)
class FileResult:
    """Analysis of one file.

    Attributes
    ----------
    path : Path
    ok : bool
        False when the file could not be analysed (``error`` says why).
    error : str or None
        Message naming the file and the reason.
    duration_s : float
        Length of the decoded audio.
    speech_s : float
        Seconds of the file covered by windows judged speech.
    label : str or None
        Dominant emotion over the speech; None without speech or on error.
    confidence : float or None
        Mean probability of ``label`` over the speech windows.
    uncertain : bool
        ``confidence`` is below the model's ``uncertainty_threshold``
        (``label`` still holds the arg-max); False without speech.
    probabilities : dict
        Mean probability per label over the speech windows (empty without speech).
    segments : list of Segment
        One per analysed window.
    warning : str or None
        Set when the result covers only part of the file (``ok`` stays True):
        ``"decoding stopped at 12.3 s: <reason>"`` for a truncated or partly
        corrupt file.
    """

    path: Path
    ok: bool
    error: str | None = None
    duration_s: float = 0.0
    speech_s: float = 0.0
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    uncertain: bool = False
    warning: str | None = None

    @property
    def has_speech(self) -> bool:
        return self.ok and self.label is not None

    def to_dict(self) -> dict[str, Any]:
        """Exactly the CLI JSON keys.

        Text is valid Unicode even for file names that are not valid UTF-8
        (:func:`~ser_engine.audio.display_path`: such bytes become ``\\xNN``).
        """
        return {
            "path": display_path(self.path),
            "ok": self.ok,
            "error": None if self.error is None else _text(self.error),
            "duration_s": round(self.duration_s, 4),
            "speech_s": round(self.speech_s, 4),
            "label": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 6),
            "uncertain": self.uncertain,
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "segments": [s.to_dict() for s in self.segments],
            "warning": None if self.warning is None else _text(self.warning),
        }


def iter_windows(
    blocks: Iterable[npt.NDArray[np.float32]], *, window: int, hop: int
) -> Iterator[tuple[int, int, FloatArray]]:
    """Cut a block stream into the windows of :func:`~ser_engine.features.frame_windows`.

    Only about one window plus one block is held at a time.

    Parameters
    ----------
    blocks : iterable of ndarray, shape (m,)
    window, hop : int
        Samples.

    Yields
    ------
    start : int
        Start sample in the stream (0 for a padded short clip).
    length : int
        Real samples in the window (``< window`` only for a padded short clip).
    samples : ndarray, shape (window,), float32

    Notes
    -----
    After exhaustion of ``blocks`` nothing is yielded for an empty stream.
    """
    if window <= 0 or hop <= 0:
        raise ParameterError("window and hop must be positive")
    pending = np.zeros(0, dtype=np.float32)
    base = 0  # stream position of pending[0]
    total = 0
    next_start = 0
    last_start = -1
    for block in blocks:
        b = np.asarray(block, dtype=np.float32).reshape(-1)
        if b.shape[0] == 0:
            continue
        pending = np.concatenate([pending, b]) if pending.shape[0] else b
        total += b.shape[0]
        while next_start + window <= total:
            i = next_start - base
            yield next_start, window, pending[i : i + window].copy()
            last_start = next_start
            next_start += hop
        keep_from = max(base, min(next_start, total - window))
        if keep_from > base:
            pending = pending[keep_from - base :]
            base = keep_from
    if total == 0:
        return
    if last_start < 0:  # shorter than one window: centre-padded, as in training
        yield 0, total, fit_to_length(y=pending, length=window)
        return
    if last_start + window < total:
        yield total - window, window, pending[pending.shape[0] - window :].copy()


def _config_for(model: EmotionModel, window_s: float | None, hop_s: float | None) -> FeatureConfig:
    cfg = model.feature_config.with_timing(window_s=window_s, hop_s=hop_s)
    fixed = model.metadata.input_shape[1]
    if fixed is not None and cfg.n_frames != fixed:
        raise ParameterError(
            f"this model needs {model.feature_config.window_s:g} s windows ({fixed} frames); "
            f"a {cfg.window_s:g} s window gives {cfg.n_frames}"
        )
    return cfg


@dataclass(frozen=True)
class WindowFeatures:
    """One analysis window of a stream: where it lies, whether it is speech, its features.

    Attributes
    ----------
    start_s, end_s : float
        Seconds from the stream's start (a padded short clip is placed at ``0 .. length``).
    speech : bool
        The speech gate's decision (:func:`ser_engine.gate.window_is_speech` on the real samples).
    log_mel : ndarray, shape (n_frames, n_mels), float32, or None
        Un-normalised log-mel frames of the window for speech windows; None for silence.
    """

    start_s: float
    end_s: float
    speech: bool
    log_mel: FloatArray | None


def iter_window_features(
    blocks: Iterable[npt.NDArray[np.float32]],
    *,
    config: FeatureConfig,
    featurizer: Featurizer,
    gate_sensitivity: float = 0.5,
) -> Iterator[WindowFeatures]:
    """Window, gate and featurise a block stream: the one path from audio to model input.

    File analysis (:func:`analyze_file`), voice profiles and training all call this,
    so a clip's training windows are exactly the speech windows ``ser analyze``
    reports. Windows are those of :func:`~ser_engine.features.frame_windows`
    (:func:`iter_windows`); a short clip is gated on its real samples and
    featurised centre-padded; consecutive windows share their feature frames, so
    only each hop's new frames are computed.

    Parameters
    ----------
    blocks : iterable of ndarray, shape (m,), float32
        Mono audio at ``config.sample_rate`` (e.g. :func:`~ser_engine.audio.iter_audio_blocks`).
    config : FeatureConfig
        Window and hop come from it.
    featurizer : Featurizer
        Built from a config with the same frame parameters.
    gate_sensitivity : float
        Speech gate sensitivity in [0, 1].

    Yields
    ------
    WindowFeatures
    """
    if not 0 <= gate_sensitivity <= 1:
        raise ParameterError(f"gate_sensitivity must be in [0, 1], got {gate_sensitivity!r}")
    sr = config.sample_rate
    w, h = config.window_samples, config.hop_samples
    # Frame reuse: consecutive windows ``hop`` apart share all but hop/hop_length
    # frames (frames are not centred), so only the new frames are computed.
    hl = config.hop_length
    hop_frames = h // hl
    reuse = h % hl == 0 and hop_frames < config.n_frames
    k0 = config.n_frames - hop_frames
    prev: tuple[int, FloatArray] | None = None  # (start, log-mel) of the last regular window

    def log_mel(start: int, win: FloatArray) -> FloatArray:
        nonlocal prev
        if reuse and prev is not None and start == prev[0] + h:
            lm = np.empty_like(prev[1])
            lm[:k0] = prev[1][hop_frames:]
            lm[k0:] = featurizer.log_mel(win[k0 * hl :])
        else:
            lm = featurizer.log_mel(win)
        prev = (start, lm)
        return lm

    for start, length, win in iter_windows(blocks, window=w, hop=h):
        if length < w:  # padded short clip: gate on its real samples, place it at 0..length
            real = fit_to_length(y=win, length=length)  # centre crop undoes the centre pad
            speech = window_is_speech(real, sample_rate=sr, sensitivity=gate_sensitivity)
            yield WindowFeatures(0.0, length / sr, speech, featurizer.log_mel(win) if speech else None)
        else:
            speech = window_is_speech(win, sample_rate=sr, sensitivity=gate_sensitivity)
            lm = log_mel(start, win) if reuse or speech else None
            yield WindowFeatures(start / sr, (start + w) / sr, speech, lm if speech else None)


def analyze_file(
    path: str | os.PathLike[str],
    model: EmotionModel,
    *,
    window_s: float | None = None,
    hop_s: float | None = None,
    gate_sensitivity: float = 0.5,
    cancel: threading.Event | None = None,
) -> FileResult:
    """Analyse one file; never raises for a bad file.

    Parameters
    ----------
    path : path-like
    model : EmotionModel
    window_s, hop_s : float, optional
        Analysis window and hop in seconds (default: the model's).
    gate_sensitivity : float
        Speech gate sensitivity in [0, 1].
    cancel : threading.Event, optional
        When set, the analysis stops at the next batch and the result is
        ``ok=False`` with ``error`` ending in "cancelled".

    Returns
    -------
    FileResult

    Raises
    ------
    ParameterError
        Invalid ``window_s``/``hop_s``/``gate_sensitivity`` for this model
        (a caller error, not a file error).
    """
    p = Path(path)
    cfg = _config_for(model, window_s, hop_s)
    if not 0 <= gate_sensitivity <= 1:
        raise ParameterError(f"gate_sensitivity must be in [0, 1], got {gate_sensitivity!r}")
    sr = cfg.sample_rate
    labels = model.labels
    featurizer = model.featurizer
    segments: list[Segment] = []
    prob_sum = np.zeros(len(labels), dtype=np.float64)
    n_speech = 0
    speech_s = 0.0
    covered_end = 0.0
    total = 0
    info: dict[str, Any] = {}
    name = display_path(p)

    def counting(blocks: Iterator[FloatArray]) -> Iterator[FloatArray]:
        nonlocal total
        for b in blocks:
            total += b.shape[0]
            yield b

    batch: list[WindowFeatures] = []

    def flush() -> None:
        nonlocal n_speech, speech_s, covered_end
        speech_lm = [wf.log_mel for wf in batch if wf.speech and wf.log_mel is not None]
        probs = None
        if speech_lm:
            probs = model.predict_features(featurizer.normalize(np.stack(speech_lm)))
            if not np.isfinite(probs).all():  # never a label from NaN: a per-file error
                raise ModelError("the model produced non-finite output (NaN or infinity)")
        k = 0
        for wf in batch:
            if wf.speech and probs is not None:
                pr = probs[k]
                k += 1
                prob_sum[:] += pr
                n_speech += 1
                speech_s += max(0.0, wf.end_s - max(wf.start_s, covered_end))
                covered_end = max(covered_end, wf.end_s)
                top = int(np.argmax(pr))
                segments.append(
                    Segment(wf.start_s, wf.end_s, True, labels[top],
                            {lab: float(v) for lab, v in zip(labels, pr, strict=True)},
                            uncertain=model.is_uncertain(float(pr[top])))
                )
            else:
                segments.append(Segment(wf.start_s, wf.end_s, False, None, {}))
        batch.clear()

    try:
        blocks = counting(iter_audio_blocks(p, sample_rate=sr, info=info, partial_ok=True))
        for wf in iter_window_features(blocks, config=cfg, featurizer=featurizer, gate_sensitivity=gate_sensitivity):
            if cancel is not None and cancel.is_set():
                return FileResult(path=p, ok=False, error=f"{name}: cancelled", duration_s=total / sr)
            batch.append(wf)
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
        if cancel is not None and cancel.is_set():
            return FileResult(path=p, ok=False, error=f"{name}: cancelled", duration_s=total / sr)
    except SerError as exc:
        return FileResult(path=p, ok=False, error=_message(p, exc), duration_s=total / sr)
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:
        return FileResult(path=p, ok=False, error=_message(p, exc), duration_s=total / sr)
    if total == 0:
        return FileResult(path=p, ok=False, error=f"{name}: the file holds no audio samples")
    duration = total / sr
    warning = info.get("warning")
    if n_speech == 0:
        return FileResult(path=p, ok=True, duration_s=duration, speech_s=0.0, segments=segments, warning=warning)
    mean = prob_sum / n_speech
    best = int(np.argmax(mean))
    return FileResult(
        path=p,
        ok=True,
        duration_s=duration,
        speech_s=min(speech_s, duration),
        label=labels[best],
        confidence=float(mean[best]),
        probabilities={lab: float(v) for lab, v in zip(labels, mean, strict=True)},
        segments=segments,
        uncertain=model.is_uncertain(float(mean[best])),
        warning=warning,
    )


def _text(text: str) -> str:
    """``text`` with lone surrogates (from non-UTF-8 file names) as ``\\xNN`` escapes."""
    return display_path(text)


def _message(path: Path, exc: BaseException) -> str:
    text = _text(str(exc).strip() or type(exc).__name__)
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    name = display_path(path)
    return text if name in text else f"{name}: {text}"


def analyze_paths(
    paths: Iterable[str | os.PathLike[str]],
    model: EmotionModel,
    *,
    window_s: float | None = None,
    hop_s: float | None = None,
    gate_sensitivity: float = 0.5,
    workers: int = 1,
    cancel: threading.Event | None = None,
    expand: bool = True,
) -> Iterator[FileResult]:
    """Analyse files and folders; yields one result per file, in order.

    Folders are searched recursively (:func:`ser_engine.audio.find_audio_files`);
    missing paths and folders without audio come first as failed results.
    With ``workers > 1`` files are analysed in a thread pool (decoding,
    FFTs and ONNX Runtime release the GIL); results still come in order.

    Parameters
    ----------
    paths : iterable of path-like
    model : EmotionModel
        Shared by the workers (an ONNX Runtime session is thread-safe).
    window_s, hop_s, gate_sensitivity : see :func:`analyze_file`
    workers : int
        Parallel files (``>= 1``; more than :data:`MAX_WORKERS` are capped to it).
    cancel : threading.Event, optional
        Stops the batch: files not started yet are not yielded.
    expand : bool
        False to take ``paths`` as files without searching folders.
    """
    if workers < 1:
        raise ParameterError("workers must be at least 1")
    workers = min(workers, MAX_WORKERS)
    _config_for(model, window_s, hop_s)  # fail early on bad parameters
    if expand:
        files, problems = find_audio_files(list(paths))
        for p, msg in problems:
            yield FileResult(path=p, ok=False, error=msg)
    else:
        files = [Path(p) for p in paths]

    def one(f: Path) -> FileResult:
        return analyze_file(f, model, window_s=window_s, hop_s=hop_s, gate_sensitivity=gate_sensitivity,
                            cancel=cancel)

    if workers == 1:
        for f in files:
            if cancel is not None and cancel.is_set():
                return
            yield one(f)
        return
    if cancel is None:
        cancel = threading.Event()  # also stops in-flight files when the consumer goes away
    pool = ThreadPoolExecutor(max_workers=min(workers, MAX_WORKERS), thread_name_prefix="ser-analyze")
    try:
        window: list[Any] = []
        it = iter(files)
        ahead = 2 * workers
        for f in it:
            window.append(pool.submit(one, f))
            if len(window) >= ahead:
                break
        while window:
            res: FileResult = window.pop(0).result()
            if cancel.is_set():
                return
            yield res
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(one, nxt))
    except BaseException:
        # KeyboardInterrupt in .result(), or the consumer closed the generator: the
        # files in flight stop at their next window instead of running to their end.
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
