"""File analysis: the dominant emotion of each file over its speech.

A file is decoded block by block (bounded memory) and passed through the one
window-inference core (:func:`ser_engine.dsp.core.iter_window_features`): the
analysis windows training uses (starts ``0, hop, 2*hop, ...`` plus a final
window ending at the file's end; a clip no longer than one window is
centre-padded), each gated by the speech gate, feature frames computed once
per frame and shared by overlapping windows. The windows are collected in
batches of :data:`~ser_engine.inference.model.BATCH`; each batch's speech windows are
classified in one call of :meth:`~ser_engine.inference.model.EmotionModel.predict`. The
file's probabilities (and affect scores, for a model that has them) are the
mean over its speech windows; its label is their arg-max. ``speech_s`` and
``speech_spans`` say where the voice is, from the gate's 20 ms frame decisions
(:class:`ser_engine.dsp.core.VoiceTrack`), not the union of whole windows. A file
without speech is a success with ``label=None`` and ``speech_s=0``: the
engine says there is no speech rather than inventing an emotion.

:func:`analyze_file` never raises for a bad file: an
:class:`~ser_engine.errors.AudioError` (unreadable, unsupported, corrupt or
empty file, non-finite samples) becomes ``FileResult(ok=False, error=...)``
whose message names the file and the reason, so a batch carries on; it is
logged at INFO on ``ser.analysis``. A model that outputs NaN or infinity for
a file makes that file fail ("the model produced non-finite output"), never
a label. Anything else (a bug, an inference failure, a caller error) is not a
property of the file: it propagates with its traceback and stops the batch.
A truncated or partly corrupt file yields the analysis of what decoded, with
``ok=True`` and ``warning="decoding stopped at 12.3 s: <reason>"``.

:func:`analyze_paths` runs files in a thread pool (``workers``, default the
number of usable cores) with native thread pools (BLAS/OpenMP) pinned to one
thread, so workers do not oversubscribe the cores.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from ser_engine.dsp.audio import display_path, find_audio_files, iter_audio_blocks
from ser_engine.dsp.core import VoiceTrack, WindowFeatures, iter_window_features
from ser_engine.errors import AudioError, NonFiniteOutputError, ParameterError
from ser_engine.inference.model import BATCH, EmotionModel
from ser_engine.logs import get_logger
from ser_engine.timing import config_for

__all__ = [
    "MAX_WORKERS",
    "MIN_AUDIO_S",
    "FileResult",
    "Segment",
    "WindowFeatures",
    "analyze_file",
    "analyze_paths",
    "default_workers",
    "iter_window_features",
]

FloatArray = npt.NDArray[np.float32]
logger = get_logger(__name__)
#: Most parallel files :func:`analyze_paths` runs (more threads only add memory; OpenBLAS
#: supports at most 64 calling threads and corrupts its heap beyond).
MAX_WORKERS = min(32, 4 * (os.cpu_count() or 1))
MIN_AUDIO_S = 0.2
"""The shortest audio whose speech the gate can tell (ten 20 ms frames, enough to rise above the
quiet between syllables). A shorter file without speech fails as "too short", never "no speech":
its silence is not a finding."""


def default_workers() -> int:
    """Parallel files by default: the cores this process may use."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return max(1, int(count() or 1))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Segment:
    """One analysed window of a file (seconds from the file's start).

    ``uncertain``: the window's top probability is below the model's
    ``uncertainty_threshold`` (``label`` still holds the arg-max). ``affect``:
    the window's score per affect dimension, empty for silence and for a model
    without an affect output (not in :meth:`to_dict`).
    """

    start_s: float
    end_s: float
    speech: bool
    label: str | None
    probabilities: dict[str, float] = field(default_factory=dict)
    uncertain: bool = False
    affect: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the segment as the CLI's JSON object (times and probabilities rounded)."""
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
        Voiced seconds of the file: the gate's 20 ms frame decisions inside
        the speech windows, pauses under 0.3 s bridged (the sum of ``speech_spans``).
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
        One per analysed window (``speech``: the gate's decision on the whole window,
        the windows the model classified).
    warning : str or None
        Set when the result covers only part of the file (``ok`` stays True):
        ``"decoding stopped at 12.3 s: <reason>"`` for a truncated or partly
        corrupt file.
    speech_spans : list of (float, float)
        Where the voice is, in seconds, to within a 20 ms gate frame (not in
        :meth:`to_dict`, whose keys are the CLI's JSON format).
    affect : dict
        Mean score per affect dimension over the speech windows, like ``probabilities``;
        empty without speech and for a model without an affect output (not in :meth:`to_dict`).
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
    speech_spans: list[tuple[float, float]] = field(default_factory=list)
    affect: dict[str, float] = field(default_factory=dict)

    @property
    def has_speech(self) -> bool:
        """Whether the file was analysed and holds speech (so it has a ``label``)."""
        return self.ok and self.label is not None

    def to_dict(self) -> dict[str, Any]:
        r"""Return the result as the CLI's JSON object (exactly its keys, in order).

        Text is valid Unicode even for file names that are not valid UTF-8
        (:func:`~ser_engine.dsp.audio.display_path`: such bytes become ``\xNN``).
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


def analyze_file(
    path: str | os.PathLike[str],
    model: EmotionModel,
    *,
    window_s: float | None = None,
    hop_s: float | None = None,
    gate_sensitivity: float = 0.5,
    cancel: threading.Event | None = None,
) -> FileResult:
    """Analyse one file; a bad file gives a failed result, not an exception.

    Parameters
    ----------
    path : path-like
    model : EmotionModel
    window_s, hop_s : float, optional
        Analysis window and hop in seconds (default: the model's;
        :func:`ser_engine.timing.config_for` checks them).
    gate_sensitivity : float
        Speech gate sensitivity in [0, 1].
    cancel : threading.Event, optional
        When set, the analysis stops at the next window and the result is
        ``ok=False`` with ``error`` ending in "cancelled".

    Returns
    -------
    FileResult

    Raises
    ------
    ParameterError
        Invalid ``window_s``/``hop_s``/``gate_sensitivity`` for this model
        (a caller error, not a file error).
    SerError
        Inference failed in ONNX Runtime (not a property of the file).
    Exception
        Any other error is a bug and propagates with its traceback; only an
        :class:`~ser_engine.errors.AudioError` becomes ``ok=False``.
    """
    p = Path(path)
    cfg = config_for(model, window_s=window_s, hop_s=hop_s)
    if not 0 <= gate_sensitivity <= 1:
        raise ParameterError(f"gate_sensitivity must be in [0, 1], got {gate_sensitivity!r}")
    sr = cfg.sample_rate
    name = display_path(p)
    summary = _FileSummary(model, name=name)
    decoded = _SampleCount()
    info: dict[str, Any] = {}

    # decode block by block, cut, gate and featurise the windows, classify them a batch at a time
    try:
        blocks = decoded.count(iter_audio_blocks(p, sample_rate=sr, info=info, partial_ok=True))
        windows = iter_window_features(blocks, config=cfg, featurizer=model.featurizer,
                                       gate_sensitivity=gate_sensitivity)
        finished = summary.add_windows(windows, cancel=cancel)
    except AudioError as exc:  # the file's fault; anything else is not, and propagates
        message = _message(p, exc)
        logger.info("%s", message, exc_info=logger.isEnabledFor(logging.DEBUG))
        return FileResult(path=p, ok=False, error=message, duration_s=decoded.total / sr)
    if not finished:
        return FileResult(path=p, ok=False, error=f"{name}: cancelled", duration_s=decoded.total / sr)
    if decoded.total == 0:  # samples decoded, none left after resampling (a few source samples)
        message = f"{name}: the file holds no audio samples"
        logger.info("%s", message)
        return FileResult(path=p, ok=False, error=message)
    logger.debug("%s: %.2f s analysed, %d speech windows", name, decoded.total / sr, summary.n_speech)
    if summary.n_speech == 0 and decoded.total < MIN_AUDIO_S * sr:
        message = (f"{name}: too short to analyse ({decoded.total / sr:.2f} s of audio; "
                   f"speech needs at least {MIN_AUDIO_S:g} s)")
        logger.info("%s", message)
        return FileResult(path=p, ok=False, error=message, duration_s=decoded.total / sr)
    return summary.result(path=p, duration_s=decoded.total / sr, warning=info.get("warning"))


class _SampleCount:
    """Counts the samples of a block stream as they pass (the decoded length of a file)."""

    def __init__(self) -> None:
        self.total = 0

    def count(self, blocks: Iterator[FloatArray]) -> Iterator[FloatArray]:
        for b in blocks:
            self.total += b.shape[0]
            yield b


class _FileSummary:
    """One file's windows as they are classified: segments, the speech windows' sums and voiced frames."""

    def __init__(self, model: EmotionModel, *, name: str) -> None:
        self.model = model
        self.name = name
        self.segments: list[Segment] = []
        self.prob_sum = np.zeros(len(model.labels), dtype=np.float64)
        self.affect_sum = np.zeros(len(model.affect_names), dtype=np.float64)
        self.n_speech = 0
        self.voice = VoiceTrack(sample_rate=model.feature_config.sample_rate)

    def add_windows(self, windows: Iterable[WindowFeatures], *, cancel: threading.Event | None) -> bool:
        """Classify the windows in batches of :data:`BATCH`; False when ``cancel`` stopped it first."""
        batch: list[WindowFeatures] = []
        for wf in windows:
            if cancel is not None and cancel.is_set():
                return False
            batch.append(wf)
            if len(batch) >= BATCH:
                self.add_batch(batch)
                batch.clear()
        if batch:
            self.add_batch(batch)
        return not (cancel is not None and cancel.is_set())

    def add_batch(self, batch: list[WindowFeatures]) -> None:
        """Classify the batch's speech windows in one model call and record every window as a segment."""
        model, labels = self.model, self.model.labels
        speech = [wf.features for wf in batch if wf.speech and wf.features is not None]
        out = None
        if speech:
            try:
                out = model.predict(np.stack(speech))
            except NonFiniteOutputError as exc:  # never a label from NaN: this file fails, the batch goes on
                raise AudioError(f"{self.name}: {exc}") from exc
        k = 0
        for wf in batch:
            if not (wf.speech and out is not None):
                self.segments.append(Segment(wf.start_s, wf.end_s, False, None, {}))
                continue
            pr = out.probabilities[k]
            affect = {} if out.affect is None else dict(zip(model.affect_names, map(float, out.affect[k]), strict=True))
            if out.affect is not None:
                self.affect_sum += out.affect[k]
            k += 1
            self.prob_sum[:] += pr
            self.n_speech += 1
            self.voice.add(start_s=wf.start_s, voiced=wf.voiced)
            top = int(np.argmax(pr))
            self.segments.append(
                Segment(wf.start_s, wf.end_s, True, labels[top],
                        {lab: float(v) for lab, v in zip(labels, pr, strict=True)},
                        uncertain=model.is_uncertain(float(pr[top])), affect=affect)
            )

    def result(self, *, path: Path, duration_s: float, warning: str | None) -> FileResult:
        """Return the file's result: the mean over its speech windows, and where its voice is."""
        if self.n_speech == 0:
            return FileResult(path=path, ok=True, duration_s=duration_s, speech_s=0.0, segments=self.segments,
                              warning=warning)
        model, labels = self.model, self.model.labels
        spans = self.voice.spans(duration_s=duration_s)
        mean = self.prob_sum / self.n_speech
        best = int(np.argmax(mean))
        affect = self.affect_sum / self.n_speech
        return FileResult(
            path=path,
            ok=True,
            duration_s=duration_s,
            speech_s=float(sum(e - s for s, e in spans)),
            label=labels[best],
            confidence=float(mean[best]),
            probabilities={lab: float(v) for lab, v in zip(labels, mean, strict=True)},
            segments=self.segments,
            uncertain=model.is_uncertain(float(mean[best])),
            warning=warning,
            speech_spans=spans,
            affect={n: float(v) for n, v in zip(model.affect_names, affect, strict=True)},
        )


def _text(text: str) -> str:
    r"""Return ``text`` with lone surrogates (from non-UTF-8 file names) as ``\xNN`` escapes."""
    return display_path(text)


def _message(path: Path, exc: AudioError) -> str:
    """Return the user-facing message of a failed file: the error's text, starting with the file's name."""
    text = _text(str(exc).strip() or type(exc).__name__)
    name = display_path(path)
    return text if name in text else f"{name}: {text}"


def analyze_paths(
    paths: Iterable[str | os.PathLike[str]],
    model: EmotionModel,
    *,
    window_s: float | None = None,
    hop_s: float | None = None,
    gate_sensitivity: float = 0.5,
    workers: int | None = None,
    cancel: threading.Event | None = None,
    expand: bool = True,
) -> Iterator[FileResult]:
    """Analyse files and folders; yields one result per file, in order.

    Folders are searched recursively (:func:`ser_engine.dsp.audio.find_audio_files`);
    missing paths and folders without audio come first as failed results.
    With ``workers > 1`` files are analysed in a thread pool (decoding,
    FFTs and ONNX Runtime release the GIL); results still come in order.
    While the batch runs, native thread pools (BLAS, OpenMP) are limited to
    one thread (threadpoolctl): each worker is one busy thread, and NumPy's
    BLAS does not start a pool of its own per worker (which made 2 workers
    slower than 1 on 2 cores). ONNX Runtime sessions are single-threaded
    (:meth:`ser_engine.inference.model.EmotionModel.load`).

    Parameters
    ----------
    paths : iterable of path-like
    model : EmotionModel
        Shared by the workers (an ONNX Runtime session is thread-safe).
    window_s, hop_s, gate_sensitivity : see :func:`analyze_file`
    workers : int or None
        Parallel files (``>= 1``; more than :data:`MAX_WORKERS` are capped to it);
        None for :func:`default_workers` (the usable cores).
    cancel : threading.Event, optional
        Stops the batch: files not started yet are not yielded.
    expand : bool
        False to take ``paths`` as files without searching folders.

    Yields
    ------
    FileResult
        One per file, in the order of ``paths`` (folders expanded in sorted order).

    Raises
    ------
    ParameterError
        ``workers < 1`` or timing parameters the model cannot use.
    Exception
        Whatever :func:`analyze_file` raises (anything but a bad file); the
        files in flight are cancelled and the batch stops.
    """
    if workers is None:
        workers = default_workers()
    if workers < 1:
        raise ParameterError("workers must be at least 1")
    workers = min(workers, MAX_WORKERS)
    config_for(model, window_s=window_s, hop_s=hop_s)  # fail early on bad parameters
    if expand:
        files, problems = find_audio_files(list(paths))
        for p, msg in problems:
            yield FileResult(path=p, ok=False, error=msg)
    else:
        files = [Path(p) for p in paths]

    def one(f: Path) -> FileResult:
        return analyze_file(f, model, window_s=window_s, hop_s=hop_s, gate_sensitivity=gate_sensitivity,
                            cancel=cancel)

    with threadpool_limits(limits=1):
        yield from _run(files, one, workers, cancel)


def _run(
    files: list[Path], one: Callable[[Path], FileResult], workers: int, cancel: threading.Event | None
) -> Iterator[FileResult]:
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
