"""The one feature configuration shared by training and run time.

A :class:`FeatureConfig` is frozen and validated on construction. It is saved
inside the model's JSON metadata (``model.json``), which is the single source
of truth at run time: the runtime never guesses a parameter the model was
trained with.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ser_engine.errors import ParameterError

__all__ = ["DEFAULT_HOP_S", "DEFAULT_WINDOW_S", "FEATURE_SETS", "FeatureConfig"]

DEFAULT_WINDOW_S = 3.0
"""Seconds of audio per analysis window for a new model. At run time the model's own
``feature_config.window_s`` is the default (CLI, app and live sessions alike)."""
DEFAULT_HOP_S = 0.5
"""Seconds between analysis windows for a new model (run time: ``feature_config.hop_s``)."""

FEATURE_SETS = ("logmel", "mfcc", "mfcc_zcr_rms", "mfcc_chroma_mel")
"""Per-frame feature sets of :class:`~ser_engine.dsp.features.Featurizer`, parts in this order within a frame:

* ``logmel``: ``n_mels`` log-mel values (the project's model);
* ``mfcc``: ``n_mfcc`` MFCCs;
* ``mfcc_zcr_rms``: ``n_mfcc`` MFCCs, zero-crossing rate, RMS (seeds 000, 003, 004);
* ``mfcc_chroma_mel``: ``n_mfcc`` MFCCs, ``n_chroma`` chroma, ``n_mels`` log-mel values (seed 001).
"""
# Keys that model.json leaves out while they hold these values (a log-mel model's file names none of them).
_OPTIONAL_KEYS_DEFAULTS: dict[str, Any] = {"features": "logmel", "n_mfcc": 40, "n_chroma": 12}


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ParameterError(message)


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the featurizer and of the sliding analysis.

    Parameters
    ----------
    sample_rate : int
        Rate in Hz of the audio the featurizer accepts. Everything is
        resampled to it before featurization.
    n_fft : int
        FFT size in samples.
    win_length : int
        Analysis window (Hann) length in samples, ``<= n_fft``; the window is
        zero-padded to ``n_fft`` in the centre, as librosa does.
    hop_length : int
        Frame step in samples.
    n_mels : int
        Number of mel bands (Slaney mel scale and normalisation, as librosa's
        default).
    fmin, fmax : float
        Frequency range of the mel filter bank in Hz; ``fmax <= sample_rate/2``.
    log_offset : float
        ``log(mel_power + log_offset)`` is the log-mel value; it bounds the
        value of digital silence.
    window_s : float
        Length in seconds of one analysis window (what the model sees).
        Shorter clips are centre-padded with zeros to this length.
    hop_s : float
        Step in seconds between two analysis windows (live and file mode).
    mean, std : tuple of float or None
        Per-feature normalisation statistics of the training frames, each of
        length :attr:`n_features`; ``None`` before they are fitted. Features are
        ``(frames - mean) / std``.
    features : str
        The per-frame feature set, one of :data:`FEATURE_SETS` (``"logmel"``
        when absent from an older ``model.json``).
    n_mfcc : int
        MFCCs per frame (``<= n_mels``) for the sets with MFCC.
    n_chroma : int
        Chroma bins per frame for ``mfcc_chroma_mel``.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    log_offset: float = 1e-6
    window_s: float = DEFAULT_WINDOW_S
    hop_s: float = DEFAULT_HOP_S
    mean: tuple[float, ...] | None = field(default=None, repr=False)
    std: tuple[float, ...] | None = field(default=None, repr=False)
    features: str = "logmel"
    n_mfcc: int = 40
    n_chroma: int = 12

    def __post_init__(self) -> None:
        # Normalise sequences given as lists (e.g. from JSON) into tuples.
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                try:
                    object.__setattr__(self, name, tuple(float(v) for v in value))
                except (TypeError, ValueError) as exc:
                    raise ParameterError(f"FeatureConfig.{name} must be a sequence of numbers") from exc
        _check(
            isinstance(self.features, str) and self.features in FEATURE_SETS,
            f"FeatureConfig.features must be one of {', '.join(FEATURE_SETS)}, got {self.features!r}",
        )
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "n_mfcc", "n_chroma"):
            value = getattr(self, name)
            _check(
                isinstance(value, int) and not isinstance(value, bool) and value > 0,
                f"FeatureConfig.{name} must be a positive integer, got {value!r}",
            )
        for name in ("fmin", "fmax", "log_offset", "window_s", "hop_s"):
            value = getattr(self, name)
            _check(
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                f"FeatureConfig.{name} must be a finite number, got {value!r}",
            )
        _check(8000 <= self.sample_rate <= 192000, f"sample_rate {self.sample_rate} Hz is outside 8-192 kHz")
        _check(self.win_length <= self.n_fft, "win_length must not exceed n_fft")
        _check(self.n_mfcc <= self.n_mels, f"n_mfcc={self.n_mfcc} must not exceed n_mels={self.n_mels}")
        _check(self.hop_length <= self.win_length, "hop_length must not exceed win_length")
        _check(0 <= self.fmin < self.fmax, "need 0 <= fmin < fmax")
        _check(self.fmax <= self.sample_rate / 2, "fmax must not exceed the Nyquist frequency")
        _check(self.log_offset > 0, "log_offset must be positive")
        _check(self.window_s > 0 and self.hop_s > 0, "window_s and hop_s must be positive")
        _check(
            self.window_samples >= self.n_fft,
            f"window_s={self.window_s} s is shorter than one FFT frame ({self.n_fft} samples)",
        )
        _check(self.hop_s <= self.window_s, "hop_s must not exceed window_s")
        if (self.mean is None) != (self.std is None):
            raise ParameterError("FeatureConfig.mean and .std must be given together")
        if self.mean is not None and self.std is not None:
            n = self.n_features
            _check(len(self.mean) == n, f"mean has {len(self.mean)} values, need n_features={n}")
            _check(len(self.std) == n, f"std has {len(self.std)} values, need n_features={n}")
            _check(all(math.isfinite(v) for v in self.mean), "mean must be finite")
            _check(all(math.isfinite(v) and v > 0 for v in self.std), "std must be finite and positive")

    # Derived quantities -------------------------------------------------
    @property
    def window_samples(self) -> int:
        """Samples in one analysis window, ``round(window_s * sample_rate)``."""
        return round(self.window_s * self.sample_rate)

    @property
    def hop_samples(self) -> int:
        """Samples between two analysis windows, ``round(hop_s * sample_rate)``."""
        return round(self.hop_s * self.sample_rate)

    @property
    def n_frames(self) -> int:
        """Feature frames in one analysis window (no centring, no padding)."""
        return frames_for(self.window_samples, n_fft=self.n_fft, hop_length=self.hop_length)

    @property
    def n_features(self) -> int:
        """Values per feature frame: the width of the model's input (see :data:`FEATURE_SETS`)."""
        if self.features == "mfcc":
            return self.n_mfcc
        if self.features == "mfcc_zcr_rms":
            return self.n_mfcc + 2
        if self.features == "mfcc_chroma_mel":
            return self.n_mfcc + self.n_chroma + self.n_mels
        return self.n_mels

    @property
    def is_fitted(self) -> bool:
        """True when normalisation statistics are present."""
        return self.mean is not None

    def with_stats(self, *, mean: Any, std: Any) -> FeatureConfig:
        """Return a copy with normalisation statistics (each of length :attr:`n_features`)."""
        return replace(self, mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))

    def with_timing(self, *, window_s: float | None = None, hop_s: float | None = None) -> FeatureConfig:
        """Return a copy with another analysis window and/or hop (validated)."""
        return replace(
            self,
            window_s=self.window_s if window_s is None else float(window_s),
            hop_s=self.hop_s if hop_s is None else float(hop_s),
        )

    # Serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists).

        ``features``, ``n_mfcc`` and ``n_chroma`` are left out while they have their
        default values: a log-mel config's ``model.json`` holds the log-mel keys only, and
        :meth:`from_dict` gives a file without them the defaults (log-mel).
        """
        data = asdict(self)
        for name in ("mean", "std"):
            if data[name] is not None:
                data[name] = list(data[name])
        for name, default in _OPTIONAL_KEYS_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Build and validate from a dict; unknown keys are an error."""
        if not isinstance(data, dict):
            raise ParameterError("feature config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"unknown FeatureConfig keys: {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ParameterError(f"invalid feature config: {exc}") from exc

    def to_json(self) -> str:
        """Return the config as indented JSON (:meth:`to_dict`)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureConfig:
        """Parse and validate a JSON object (:meth:`from_dict`); bad JSON is a ``ParameterError``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"feature config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path`` (UTF-8, final newline)."""
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> FeatureConfig:
        """Read and validate a config written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def frames_for(n_samples: int, *, n_fft: int, hop_length: int) -> int:
    """Count the full frames in ``n_samples`` samples (0 when fewer than ``n_fft``)."""
    if n_samples < n_fft:
        return 0
    return 1 + (n_samples - n_fft) // hop_length
