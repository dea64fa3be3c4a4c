"""The model's JSON metadata (``model.json``) and the functions the runtime applies to its outputs.

:class:`ModelMetadata` is the single source of truth at run time: labels,
:class:`~ser_engine.config.FeatureConfig` with its normalisation statistics,
calibration temperature, uncertainty threshold and what it costs on validation
(:class:`ConfidenceTradeoff`), voice calibration reference, the optional affect
output (:class:`AffectOutput`), provenance.
:class:`~ser_engine.inference.model.EmotionModel` loads it beside the ONNX graph.
:func:`softmax` (emotion probabilities) and :func:`sigmoid` (affect scores) are
the only output functions of the project; training imports them too.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.errors import ModelError, ParameterError

__all__ = [
    "FORMAT_VERSION",
    "KNOWN_LABELS",
    "META_FILE",
    "MODEL_FILE",
    "MODEL_FILES",
    "AffectOutput",
    "ConfidenceTradeoff",
    "ModelMetadata",
    "TradeoffPoint",
    "calibrated_logits",
    "sigmoid",
    "softmax",
]

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
META_FILE = "model.json"
MODEL_FILES = (MODEL_FILE, META_FILE)
"""The files of a model set, in the order its fingerprint reads them
(:attr:`ser_engine.inference.model.EmotionModel.fingerprint`): the graph first."""
KNOWN_LABELS = ("angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised")


def softmax(logits: npt.ArrayLike, *, temperature: float = 1.0) -> npt.NDArray[np.float32]:
    """Temperature-scaled softmax over the last axis.

    Parameters
    ----------
    logits : array_like, shape (..., n_labels)
    temperature : float
        ``> 0``; probabilities are ``softmax(logits / temperature)``.

    Returns
    -------
    ndarray, same shape, float32, rows summing to 1
    """
    if not temperature > 0:
        raise ParameterError("temperature must be positive")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probs: npt.NDArray[np.float32] = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return probs


def sigmoid(logits: npt.ArrayLike, *, temperature: npt.ArrayLike = 1.0) -> npt.NDArray[np.float32]:
    """Temperature-scaled logistic function, element-wise: ``1 / (1 + exp(-logits / temperature))``.

    Parameters
    ----------
    logits : array_like, shape (..., n)
    temperature : float or array_like, shape (n,)
        ``> 0``; one per column (broadcast over the last axis).

    Returns
    -------
    ndarray, same shape as ``logits``, float32, in [0, 1]
    """
    t = np.asarray(temperature, dtype=np.float64)
    if not np.all(t > 0):
        raise ParameterError("temperature must be positive")
    z = np.asarray(logits, dtype=np.float64) / t
    e = np.exp(-np.abs(z))  # never overflows: exp of a non-positive number
    out: npt.NDArray[np.float32] = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)
    return out


def calibrated_logits(
    *, logits: npt.ArrayLike, head_logits: npt.ArrayLike | None, shift: npt.ArrayLike, strength: float
) -> npt.NDArray[np.float32]:
    """Apply a voice profile's shift to a model's logits.

    Without a voice calibration head: ``logits - shift``. With one:
    ``(1 - strength) * logits + strength * (head_logits - shift)``, a blend of the
    model's head and the speaker-centred head, centred on the profile.

    Parameters
    ----------
    logits : array_like, shape (n_windows, n_labels)
    head_logits : array_like, shape (n_windows, n_labels), or None
        The voice calibration head's logits (``ModelMetadata.voice_head_output``).
    shift : array_like, shape (n_labels,)
        The profile's ``logit_shift``.
    strength : float
        ``ModelMetadata.voice_strength`` (the head's share of the blend; unused without a head,
        where it is already in the shift).

    Returns
    -------
    ndarray, shape (n_windows, n_labels), float32
    """
    z = np.asarray(logits, dtype=np.float32)
    d = np.asarray(shift, dtype=np.float32)
    if head_logits is None:
        return z - d
    h = np.asarray(head_logits, dtype=np.float32)
    w = np.float32(strength)
    out: npt.NDArray[np.float32] = (np.float32(1) - w) * z + w * (h - d)
    return out


@dataclass(frozen=True)
class AffectOutput:
    """The optional second output of a model: affect dimensions scored independently.

    In ``model.json``: ``"affect": {"output_name": "affect", "names": ["arousal",
    "valence"], "temperature": [t_a, t_v]}``. The graph then has a second output
    of shape ``(batch, len(names))`` holding one logit per dimension; its score is
    ``sigmoid(logit / temperature)`` (:func:`sigmoid`), the probability of the
    dimension's high side (e.g. high arousal, positive valence).

    Parameters
    ----------
    output_name : str
        Name of the graph output (not the emotion logits' name).
    names : tuple of str
        The dimensions, in the output's order; distinct, non-empty.
    temperature : tuple of float
        One positive calibration temperature per dimension.
    """

    output_name: str
    names: tuple[str, ...]
    temperature: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (isinstance(self.output_name, str) and self.output_name):
            raise ModelError("model.json affect.output_name must be a non-empty string")
        if not self.names or not all(isinstance(n, str) and n for n in self.names):
            raise ModelError(f"model.json affect.names must be non-empty strings, got {list(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise ModelError(f"model.json affect.names repeat: {list(self.names)}")
        if len(self.temperature) != len(self.names):
            raise ModelError(
                f"model.json affect.temperature has {len(self.temperature)} values but there are "
                f"{len(self.names)} names"
            )
        if not all(_finite_number(t) and t > 0 for t in self.temperature):
            raise ModelError(f"model.json affect.temperature must be positive numbers, got {list(self.temperature)}")

    def to_dict(self) -> dict[str, Any]:
        """Return the ``affect`` object of ``model.json``."""
        return {"output_name": self.output_name, "names": list(self.names), "temperature": list(self.temperature)}

    @classmethod
    def from_dict(cls, value: Any) -> AffectOutput:
        """Parse and validate the ``affect`` object of ``model.json``.

        Raises
        ------
        ModelError
            Not an object, missing keys or invalid values.
        """
        if not isinstance(value, dict):
            raise ModelError("model.json affect must be an object with output_name, names and temperature")
        unknown = sorted(set(value) - {"output_name", "names", "temperature"})
        if unknown:
            raise ModelError(f"model.json affect has unknown keys: {', '.join(unknown)}")
        names, temps = value.get("names"), value.get("temperature")
        if not isinstance(names, list):
            raise ModelError("model.json affect.names must be a list of strings")
        if not isinstance(temps, list) or not all(_finite_number(t) for t in temps):
            raise ModelError("model.json affect.temperature must be a list of positive numbers")
        return cls(
            output_name=value.get("output_name", ""),
            names=tuple(names),
            temperature=tuple(float(t) for t in temps),
        )


@dataclass(frozen=True)
class TradeoffPoint:
    """What a minimum confidence gives on validation clips: how many are answered, how many of those right.

    Parameters
    ----------
    min_confidence : float
        The threshold, in ``[0, 1)``: a clip whose top probability is below it is *uncertain*.
    coverage : float
        In ``[0, 1]``: the share of the clips answered (not uncertain).
    accuracy : float
        In ``[0, 1]``: the share of the answered clips whose emotion is right.
    estimated : bool
        Interpolated between measured points (:meth:`ConfidenceTradeoff.at`), not
        measured itself; not part of ``model.json`` nor of equality.
    """

    min_confidence: float
    coverage: float
    accuracy: float
    estimated: bool = field(default=False, compare=False)

    def describe(self) -> str:
        """Say the point in words: "answers 78 % of the clips, 71 % of those right" ("about" when estimated)."""
        about = "about " if self.estimated else ""
        return (f"answers {about}{100 * self.coverage:.0f} % of the clips, {about}{100 * self.accuracy:.0f} % "
                "of those right")

    def to_dict(self) -> dict[str, float]:
        """Return the point as one object of ``confidence_tradeoff.points``."""
        return {"min_confidence": self.min_confidence, "coverage": self.coverage, "accuracy": self.accuracy}


_POINT_KEYS = ("min_confidence", "coverage", "accuracy")


@dataclass(frozen=True)
class ConfidenceTradeoff:
    """Coverage and accuracy against the minimum confidence, measured on validation clips.

    In ``model.json``: ``"confidence_tradeoff": {"measured_on": "...", "points":
    [{"min_confidence": 0.0, "coverage": 1.0, "accuracy": 0.62}, ...]}``. A user who
    raises the minimum confidence gets fewer answers, each more often right; these
    points say how many and how often, so the choice can be made knowingly.

    Parameters
    ----------
    points : tuple of TradeoffPoint
        At least one, in strictly increasing ``min_confidence``. Coverage cannot grow
        with the threshold (a clip uncertain at one threshold is uncertain at every
        higher one), so it must not increase from one point to the next. Leave out
        thresholds at which no clip is answered (their accuracy is undefined).
    measured_on : str
        What the points were measured on (which clips, how many), non-empty.
    """

    points: tuple[TradeoffPoint, ...]
    measured_on: str

    def __post_init__(self) -> None:
        where = "model.json confidence_tradeoff"
        if not (isinstance(self.measured_on, str) and self.measured_on.strip()):
            raise ModelError(f"{where}.measured_on must be a non-empty string saying what the points were "
                             "measured on")
        if not self.points:
            raise ModelError(f"{where}.points must list at least one point")
        for i, pt in enumerate(self.points):
            for key in _POINT_KEYS:
                v = getattr(pt, key)
                upper_open = key == "min_confidence"  # a threshold of 1 would make everything uncertain
                if not (_finite_number(v) and v >= 0 and (v < 1 if upper_open else v <= 1)):
                    bounds = "[0, 1)" if upper_open else "[0, 1]"
                    raise ModelError(f"{where}.points[{i}].{key} must be a number in {bounds}, got {v!r}")
        for i, (a, b) in enumerate(itertools.pairwise(self.points), start=1):
            if not b.min_confidence > a.min_confidence:
                raise ModelError(f"{where}.points must be sorted by min_confidence without repeats: "
                                 f"points[{i}] has {b.min_confidence!r} after {a.min_confidence!r}")
            if b.coverage > a.coverage:
                raise ModelError(f"{where}.points[{i}].coverage {b.coverage!r} is above the coverage "
                                 f"{a.coverage!r} at the lower min_confidence {a.min_confidence!r}; coverage "
                                 "cannot grow with the threshold")

    def at(self, min_confidence: float) -> TradeoffPoint | None:
        """Estimate coverage and accuracy at a threshold from the measured points.

        Between two measured points both are interpolated linearly (the point is
        ``estimated``); at a measured point that point is returned.

        Parameters
        ----------
        min_confidence : float

        Returns
        -------
        TradeoffPoint or None
            With ``min_confidence`` the threshold asked for; None outside the
            measured range (nothing was measured there to say).
        """
        pts = self.points
        t = float(min_confidence)
        if not (pts[0].min_confidence <= t <= pts[-1].min_confidence):
            return None
        for a, b in itertools.pairwise(pts):
            if a.min_confidence <= t <= b.min_confidence:
                w = (t - a.min_confidence) / (b.min_confidence - a.min_confidence)
                if w == 0:
                    return a
                if w == 1:
                    return b
                return TradeoffPoint(min_confidence=t, coverage=a.coverage + w * (b.coverage - a.coverage),
                                     accuracy=a.accuracy + w * (b.accuracy - a.accuracy), estimated=True)
        return pts[0]  # a single point, asked for exactly

    def to_dict(self) -> dict[str, Any]:
        """Return the ``confidence_tradeoff`` object of ``model.json``."""
        return {"measured_on": self.measured_on, "points": [p.to_dict() for p in self.points]}

    @classmethod
    def from_dict(cls, value: Any) -> ConfidenceTradeoff:
        """Parse and validate the ``confidence_tradeoff`` object of ``model.json``.

        Raises
        ------
        ModelError
            Not an object, missing or unknown keys, values out of range, points out of order.
        """
        where = "model.json confidence_tradeoff"
        if not isinstance(value, dict):
            raise ModelError(f"{where} must be an object with measured_on and points")
        unknown = sorted(set(value) - {"measured_on", "points"})
        if unknown:
            raise ModelError(f"{where} has unknown keys: {', '.join(unknown)}")
        points = value.get("points")
        if not isinstance(points, list):
            raise ModelError(f"{where}.points must be a list of objects with {', '.join(_POINT_KEYS)}")
        parsed: list[TradeoffPoint] = []
        for i, item in enumerate(points):
            if not isinstance(item, dict) or set(item) != set(_POINT_KEYS):
                got = sorted(item) if isinstance(item, dict) else type(item).__name__
                raise ModelError(f"{where}.points[{i}] must be an object with exactly the keys "
                                 f"{', '.join(_POINT_KEYS)}, got {got}")
            for key in _POINT_KEYS:
                if not _finite_number(item[key]):
                    raise ModelError(f"{where}.points[{i}].{key} must be a number, got {item[key]!r}")
            parsed.append(TradeoffPoint(min_confidence=float(item["min_confidence"]),
                                        coverage=float(item["coverage"]), accuracy=float(item["accuracy"])))
        return cls(points=tuple(parsed), measured_on=value.get("measured_on", ""))


@dataclass(frozen=True)
class ModelMetadata:
    """Contents of ``model.json``.

    Parameters
    ----------
    name : str
        Short model name shown to users.
    labels : tuple of str
        Output classes in graph order, lower-case words from ``KNOWN_LABELS``.
    feature_config : FeatureConfig
        Featurizer parameters, including fitted normalisation statistics.
    input_name, output_name : str
        Graph tensor names.
    input_shape : tuple
        ``(None, n_frames or None, n_features)``; ``None`` marks a dynamic axis,
        ``n_features`` is ``feature_config.n_features``.
    temperature : float
        Calibration temperature applied to the logits.
    provenance : dict
        Corpora, split, library versions, git commit, training command.
    metrics : dict
        Test-speaker metrics as reported by training.
    voice_reference : tuple of float, optional
        ``voice_calibration.reference_logits``: mean logits of the reference
        speakers' neutral speech, one per label. None: the model cannot be
        calibrated to a voice (:mod:`ser_engine.inference.profile`).
    voice_reference_fitted_on : str
        ``voice_calibration.fitted_on``: what the reference was computed on.
    voice_strength : float
        ``voice_calibration.strength`` in ``[0, 2]``: the fraction of the measured
        offset a profile removes (chosen on validation voices; 1.0 when absent).
        With a :attr:`voice_head_output`, the share of that head in the blend, in ``(0, 1]``.
    voice_head_output : str, optional
        ``voice_calibration.head_output``: a graph output holding a second head's logits
        (a head fitted on speaker-centred vectors), which a voice profile blends in:
        calibrated logits = (1 - strength) * logits + strength * (head logits - shift),
        the shift being the profile's mean head logits minus ``voice_reference``
        (:mod:`ser_engine.inference.profile`). None (absent): a profile shifts the
        logits themselves.
    uncertainty_threshold : float
        In ``[0, 1)``; a prediction whose top probability is below it is
        *uncertain*. 0.0 (absent in model.json): never uncertain. A user's own
        minimum confidence replaces it
        (:meth:`~ser_engine.inference.model.EmotionModel.with_min_confidence`).
    confidence_tradeoff : ConfidenceTradeoff, optional
        Coverage and accuracy on validation clips against the threshold; None
        (absent in model.json): not measured (:meth:`tradeoff_at` says None).
    affect : AffectOutput, optional
        The graph's second output (affect dimensions); None (absent in model.json): none.
    max_batch : int, optional
        Windows per graph call at most; None (absent in model.json): any. A graph
        quantised to int8 with dynamic activation ranges computes those ranges over
        the whole call, so a window's numbers depend on the other windows of the
        call; with ``max_batch`` 1 a window gives the same numbers alone (live) as in
        a file (batches).
    """

    name: str
    labels: tuple[str, ...]
    feature_config: FeatureConfig
    input_name: str = "features"
    output_name: str = "logits"
    input_shape: tuple[int | None, ...] = (None, None, 64)
    temperature: float = 1.0
    format_version: int = FORMAT_VERSION
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    voice_reference: tuple[float, ...] | None = None
    voice_reference_fitted_on: str = ""
    uncertainty_threshold: float = 0.0
    voice_strength: float = 1.0
    affect: AffectOutput | None = None
    max_batch: int | None = None
    confidence_tradeoff: ConfidenceTradeoff | None = None
    voice_head_output: str | None = None

    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise ModelError(
                f"model.json format_version {self.format_version} is not supported (need {FORMAT_VERSION})"
            )
        if not self.labels:
            raise ModelError("model.json lists no labels")
        if len(set(self.labels)) != len(self.labels):
            raise ModelError(f"model.json labels repeat: {list(self.labels)}")
        bad = [lab for lab in self.labels if lab not in KNOWN_LABELS]
        if bad:
            raise ModelError(f"model.json has unknown labels {bad}; known: {list(KNOWN_LABELS)}")
        t = self.temperature
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
            raise ModelError(f"model.json temperature must be a positive number, got {self.temperature!r}")
        if len(self.input_shape) != 3:
            raise ModelError(
                f"model.json input_shape must have 3 axes (batch, time, features), got {list(self.input_shape)}"
            )
        if self.input_shape[2] != self.feature_config.n_features:
            raise ModelError(
                f"model.json input_shape has {self.input_shape[2]} values per frame but feature_config "
                f"({self.feature_config.features}) gives n_features={self.feature_config.n_features}"
            )
        if self.input_shape[1] is not None and self.input_shape[1] != self.feature_config.n_frames:
            raise ModelError(
                f"model.json input_shape has {self.input_shape[1]} frames but the feature config gives "
                f"{self.feature_config.n_frames} per window"
            )
        if not self.feature_config.is_fitted:
            raise ModelError("model.json feature_config has no normalisation statistics (mean/std)")
        ref = self.voice_reference
        if ref is not None:
            if len(ref) != len(self.labels):
                raise ModelError(
                    f"model.json voice_calibration.reference_logits has {len(ref)} values but there are "
                    f"{len(self.labels)} labels"
                )
            if not all(_finite_number(v) for v in ref):
                raise ModelError("model.json voice_calibration.reference_logits must be finite numbers")
        if not (_finite_number(self.voice_strength) and 0 <= self.voice_strength <= 2):
            raise ModelError(f"model.json voice_calibration.strength must be in [0, 2], got {self.voice_strength!r}")
        head = self.voice_head_output
        if head is not None:
            taken = {self.input_name, self.output_name} | ({self.affect.output_name} if self.affect else set())
            if not isinstance(head, str) or not head or head in taken:
                raise ModelError(f"model.json voice_calibration.head_output must name a graph output of its own, "
                                 f"got {head!r}")
            if ref is None:
                raise ModelError("model.json voice_calibration.head_output needs reference_logits")
            if not 0 < self.voice_strength <= 1:
                raise ModelError(f"model.json voice_calibration.strength must be in (0, 1] with a head_output "
                                 f"(the head's share of the blend), got {self.voice_strength!r}")
        u = self.uncertainty_threshold
        if not (_finite_number(u) and 0 <= u < 1):
            raise ModelError(f"model.json uncertainty_threshold must be a number in [0, 1), got {u!r}")
        mb = self.max_batch
        if mb is not None and not (isinstance(mb, int) and not isinstance(mb, bool) and mb >= 1):
            raise ModelError(f"model.json max_batch must be a positive integer, got {mb!r}")
        if self.affect is not None and self.affect.output_name == self.output_name:
            raise ModelError(
                f"model.json affect.output_name {self.affect.output_name!r} is the emotion output's name too"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as the JSON object of ``model.json``.

        Returns
        -------
        dict
            JSON-serialisable; :meth:`from_dict` reads it back.
        """
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "name": self.name,
            "labels": list(self.labels),
            "input_name": self.input_name,
            "output_name": self.output_name,
            "input_shape": list(self.input_shape),
            "temperature": self.temperature,
            "feature_config": self.feature_config.to_dict(),
            "provenance": self.provenance,
            "metrics": self.metrics,
        }
        if self.voice_reference is not None:
            out["voice_calibration"] = {
                "reference_logits": list(self.voice_reference),
                "fitted_on": self.voice_reference_fitted_on,
                "strength": self.voice_strength,
            }
            if self.voice_head_output is not None:
                out["voice_calibration"]["head_output"] = self.voice_head_output
        if self.uncertainty_threshold:
            out["uncertainty_threshold"] = self.uncertainty_threshold
        if self.confidence_tradeoff is not None:
            out["confidence_tradeoff"] = self.confidence_tradeoff.to_dict()
        if self.affect is not None:
            out["affect"] = self.affect.to_dict()
        if self.max_batch is not None:
            out["max_batch"] = self.max_batch
        return out

    def tradeoff_at(self, min_confidence: float | None = None) -> TradeoffPoint | None:
        """Return coverage and accuracy on validation at a threshold (default: :attr:`uncertainty_threshold`).

        None when the model has no ``confidence_tradeoff`` or the threshold is outside
        its measured range (:meth:`ConfidenceTradeoff.at`).
        """
        if self.confidence_tradeoff is None:
            return None
        return self.confidence_tradeoff.at(self.uncertainty_threshold if min_confidence is None else min_confidence)

    @classmethod
    def from_dict(cls, data: Any) -> ModelMetadata:
        """Parse and validate the JSON object of ``model.json``.

        Parameters
        ----------
        data : object
            Parsed JSON.

        Returns
        -------
        ModelMetadata

        Raises
        ------
        ModelError
            Not an object, missing keys, wrong types or inconsistent values.
        """
        if not isinstance(data, dict):
            raise ModelError("model.json must hold a JSON object")
        try:
            fc = FeatureConfig.from_dict(data["feature_config"])
            reference, fitted_on, strength, head = _parse_voice_calibration(data.get("voice_calibration"))
            threshold = data.get("uncertainty_threshold", 0.0)
            if not _finite_number(threshold):
                raise ModelError(f"model.json uncertainty_threshold must be a number in [0, 1), got {threshold!r}")
            return cls(
                name=str(data["name"]),
                labels=tuple(str(x) for x in data["labels"]),
                feature_config=fc,
                input_name=str(data.get("input_name", "features")),
                output_name=str(data.get("output_name", "logits")),
                input_shape=tuple(None if v is None else int(v) for v in data["input_shape"]),
                temperature=float(data.get("temperature", 1.0)),
                format_version=int(data.get("format_version", FORMAT_VERSION)),
                provenance=dict(data.get("provenance", {})),
                metrics=dict(data.get("metrics", {})),
                voice_reference=reference,
                voice_reference_fitted_on=fitted_on,
                voice_strength=strength,
                voice_head_output=head,
                uncertainty_threshold=float(threshold),
                affect=None if data.get("affect") is None else AffectOutput.from_dict(data["affect"]),
                max_batch=data.get("max_batch"),
                confidence_tradeoff=None if data.get("confidence_tradeoff") is None
                else ConfidenceTradeoff.from_dict(data["confidence_tradeoff"]),
            )
        except KeyError as exc:
            raise ModelError(f"model.json lacks the key {exc.args[0]!r}") from exc
        except ParameterError as exc:
            raise ModelError(f"model.json feature_config is invalid: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model.json is malformed: {exc}") from exc

    def save(self, path: str | Path) -> None:
        """Write ``model.json`` (indented JSON, UTF-8).

        Parameters
        ----------
        path : path-like
        """
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ModelMetadata:
        """Read and validate ``model.json``.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        ModelMetadata

        Raises
        ------
        ModelError
            Missing, unreadable, not JSON or invalid; the message names the file.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ModelError(f"{p}: model metadata not found") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{p}: cannot read model metadata ({exc})") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{p}: not valid JSON ({exc})") from exc
        try:
            return cls.from_dict(data)
        except ModelError as exc:
            raise ModelError(f"{p}: {exc}") from exc


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parse_voice_calibration(value: Any) -> tuple[tuple[float, ...] | None, str, float, str | None]:
    """``voice_calibration`` of model.json -> (reference logits or None, fitted_on, strength, head_output)."""
    if value is None:
        return None, "", 1.0, None
    if not isinstance(value, dict):
        raise ModelError("model.json voice_calibration must be an object with reference_logits")
    ref = value.get("reference_logits")
    if not isinstance(ref, list) or not ref or not all(_finite_number(v) for v in ref):
        raise ModelError("model.json voice_calibration.reference_logits must be a list of finite numbers")
    fitted_on = value.get("fitted_on", "")
    if not isinstance(fitted_on, str):
        raise ModelError("model.json voice_calibration.fitted_on must be a string")
    strength = value.get("strength", 1.0)
    if not _finite_number(strength):
        raise ModelError(f"model.json voice_calibration.strength must be a number in [0, 2], got {strength!r}")
    head = value.get("head_output")
    if head is not None and not isinstance(head, str):
        raise ModelError(f"model.json voice_calibration.head_output must be a string, got {head!r}")
    return tuple(float(v) for v in ref), fitted_on, float(strength), head
