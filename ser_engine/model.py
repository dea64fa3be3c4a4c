"""ONNX Runtime wrapper for the emotion model and its JSON metadata.

A model is a directory holding ``model.onnx`` (input ``features`` of shape
``(batch, time, n_mels)`` float32, output ``logits`` of shape
``(batch, n_labels)``) and ``model.json`` (:class:`ModelMetadata`). The JSON is
the single source of truth at run time: labels, :class:`FeatureConfig` with
its normalisation statistics, calibration temperature, provenance. Nothing is
unpickled, ever.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.errors import ModelError, ParameterError, ProfileError, SerError
from ser_engine.features import Featurizer

if TYPE_CHECKING:
    from ser_engine.profile import VoiceProfile

__all__ = [
    "FORMAT_VERSION",
    "KNOWN_LABELS",
    "EmotionModel",
    "ModelMetadata",
    "default_model_dir",
    "model_fingerprint",
    "softmax",
]

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
META_FILE = "model.json"
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
        ``(None, n_frames or None, n_mels)``; ``None`` marks a dynamic axis.
    temperature : float
        Calibration temperature applied to the logits.
    provenance : dict
        Corpora, split, library versions, git commit, training command.
    metrics : dict
        Test-speaker metrics as reported by training.
    voice_reference : tuple of float, optional
        ``voice_calibration.reference_logits``: mean logits of the reference
        speakers' neutral speech, one per label. None: the model cannot be
        calibrated to a voice (:mod:`ser_engine.profile`).
    voice_reference_fitted_on : str
        ``voice_calibration.fitted_on``: what the reference was computed on.
    voice_strength : float
        ``voice_calibration.strength`` in ``[0, 2]``: the fraction of the measured
        offset a profile removes (chosen on validation voices; 1.0 when absent).
    uncertainty_threshold : float
        In ``[0, 1)``; a prediction whose top probability is below it is
        *uncertain*. 0.0 (absent in model.json): never uncertain.
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
                f"model.json input_shape must have 3 axes (batch, time, mels), got {list(self.input_shape)}"
            )
        if self.input_shape[2] != self.feature_config.n_mels:
            raise ModelError(
                f"model.json input_shape has {self.input_shape[2]} mel bands but feature_config.n_mels is "
                f"{self.feature_config.n_mels}"
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
        u = self.uncertainty_threshold
        if not (_finite_number(u) and 0 <= u < 1):
            raise ModelError(f"model.json uncertainty_threshold must be a number in [0, 1), got {u!r}")

    def to_dict(self) -> dict[str, Any]:
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
        if self.uncertainty_threshold:
            out["uncertainty_threshold"] = self.uncertainty_threshold
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ModelMetadata:
        if not isinstance(data, dict):
            raise ModelError("model.json must hold a JSON object")
        try:
            fc = FeatureConfig.from_dict(data["feature_config"])
            reference, fitted_on, strength = _parse_voice_calibration(data.get("voice_calibration"))
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
                uncertainty_threshold=float(threshold),
            )
        except KeyError as exc:
            raise ModelError(f"model.json lacks the key {exc.args[0]!r}") from exc
        except ParameterError as exc:
            raise ModelError(f"model.json feature_config is invalid: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model.json is malformed: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ModelMetadata:
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


def _parse_voice_calibration(value: Any) -> tuple[tuple[float, ...] | None, str, float]:
    """``voice_calibration`` of model.json -> (reference logits or None, fitted_on, strength)."""
    if value is None:
        return None, "", 1.0
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
    return tuple(float(v) for v in ref), fitted_on, float(strength)


def model_fingerprint(model: EmotionModel) -> str:
    """SHA-256 (hex) of the model's ``model.onnx`` bytes, computed once per model.

    A :class:`~ser_engine.profile.VoiceProfile` records it, so a profile is
    only ever applied to the graph it was made with.
    """
    return model.fingerprint


def default_model_dir() -> Path:
    """Directory of the bundled default model.

    Looked up, in order: ``$SER_MODEL_DIR``; the PyInstaller bundle's
    ``models`` folder; the installed package data ``ser_engine.bundled_model``;
    the ``models/`` folder of a source checkout.
    """
    env = os.environ.get("SER_MODEL_DIR")
    if env:
        return Path(env)
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        return Path(meipass) / "models"
    try:
        spec = importlib.util.find_spec("ser_engine.bundled_model")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if (Path(loc) / MODEL_FILE).exists():
                return Path(loc)
    return Path(__file__).resolve().parent.parent / "models"


class EmotionModel:
    """The emotion classifier: ONNX Runtime session plus its metadata.

    Use :meth:`load`. The session runs on ``threads`` intra-op threads (one by
    default, so that live inference leaves the other cores alone) with all
    graph optimisations on.

    Parameters
    ----------
    model_path : Path
        ``model.onnx``.
    metadata : ModelMetadata
    threads : int
    """

    def __init__(self, model_path: Path, metadata: ModelMetadata, *, threads: int = 1) -> None:
        import onnxruntime as ort

        if threads < 1:
            raise ParameterError("threads must be at least 1")
        self.path = model_path
        self.metadata = metadata
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several private types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{model_path}: not a loadable ONNX model ({reason})") from exc
        self._check_graph()
        self.featurizer = Featurizer(metadata.feature_config)
        self._fingerprint: str | None = None
        self._profile: VoiceProfile | None = None
        self._shift: npt.NDArray[np.float32] | None = None

    # ------------------------------------------------------------------
    @classmethod
    def load(cls, model_dir: str | Path | None = None, *, threads: int = 1) -> EmotionModel:
        """Load ``model.onnx`` and ``model.json`` from ``model_dir``.

        Parameters
        ----------
        model_dir : path, optional
            Defaults to :func:`default_model_dir`.
        threads : int
            ONNX Runtime intra-op threads.

        Raises
        ------
        ModelError
            Missing, unreadable or corrupt files, or metadata that disagrees
            with the graph. The message names the path and the problem.
        """
        d = Path(model_dir) if model_dir is not None else default_model_dir()
        if not d.is_dir():
            raise ModelError(f"{d}: model directory not found")
        onnx_path = d / MODEL_FILE
        if not onnx_path.is_file():
            raise ModelError(f"{onnx_path}: model file not found")
        if onnx_path.stat().st_size == 0:
            raise ModelError(f"{onnx_path}: model file is empty")
        meta = ModelMetadata.load(d / META_FILE)
        return cls(onnx_path, meta, threads=threads)

    def _check_graph(self) -> None:
        meta = self.metadata
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        where = f"{self.path}"
        if len(inputs) != 1:
            raise ModelError(f"{where}: graph has {len(inputs)} inputs, expected 1")
        inp = inputs[0]
        if inp.name != meta.input_name:
            raise ModelError(f"{where}: graph input is {inp.name!r} but model.json says {meta.input_name!r}")
        if inp.type != "tensor(float)":
            raise ModelError(f"{where}: graph input type is {inp.type}, expected float32")
        shape = list(inp.shape)
        if len(shape) != 3:
            raise ModelError(f"{where}: graph input has shape {shape}, expected (batch, time, mels)")
        for axis, (g, m) in enumerate(zip(shape, meta.input_shape, strict=True)):
            if isinstance(g, int) and m is not None and g != m:
                raise ModelError(
                    f"{where}: graph input shape {shape} disagrees with model.json input_shape "
                    f"{list(meta.input_shape)} on axis {axis}"
                )
            if isinstance(g, int) and m is None and axis > 0:
                raise ModelError(
                    f"{where}: graph input axis {axis} is fixed at {g} but model.json says it is dynamic"
                )
        names = [o.name for o in outputs]
        if meta.output_name not in names:
            raise ModelError(f"{where}: graph has no output {meta.output_name!r} (outputs: {names})")
        out = outputs[names.index(meta.output_name)]
        oshape = list(out.shape)
        if len(oshape) != 2 or (isinstance(oshape[1], int) and oshape[1] != len(meta.labels)):
            raise ModelError(
                f"{where}: graph output shape {oshape} does not match the {len(meta.labels)} labels in model.json"
            )

    # ------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    @property
    def feature_config(self) -> FeatureConfig:
        return self.metadata.feature_config

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex of ``model.onnx`` (read once, then cached; shared by profiled copies)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            try:
                with self.path.open("rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
            except OSError as exc:
                raise ModelError(f"{self.path}: cannot read the model file ({exc.strerror or exc})") from exc
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    @property
    def profile(self) -> VoiceProfile | None:
        """The voice profile whose shift :meth:`logits` subtracts (None: uncalibrated)."""
        return self._profile

    def with_profile(self, profile: VoiceProfile | None) -> EmotionModel:
        """A model calibrated to one voice, sharing this model's session, metadata and featurizer.

        Its :meth:`logits` subtract ``profile.logit_shift``, so everything built on
        the model (:meth:`predict_features`, file analysis, the streamer, live
        sessions) uses the profile unchanged. This object is not modified.

        Parameters
        ----------
        profile : VoiceProfile or None
            None gives an uncalibrated copy.

        Returns
        -------
        EmotionModel

        Raises
        ------
        ProfileError
            The profile was made with another model (different ``model.onnx``
            bytes) or for other labels.
        """
        if profile is not None:
            sha = self.fingerprint
            if profile.model_sha256 != sha:
                raise ProfileError(
                    f"profile {profile.name!r} was made for model {profile.model_name} "
                    f"(sha {profile.model_sha256[:8]}…), this is model {self.name} (sha {sha[:8]}…); "
                    "record a new profile"
                )
            if tuple(profile.labels) != self.labels:
                raise ProfileError(
                    f"profile {profile.name!r} has the labels {list(profile.labels)} but model {self.name} has "
                    f"{list(self.labels)}; record a new profile"
                )
        other = copy.copy(self)
        other._profile = profile
        other._shift = None if profile is None else np.asarray(profile.logit_shift, dtype=np.float32)
        return other

    def is_uncertain(self, top_probability: float) -> bool:
        """Whether a prediction with this top probability is *uncertain*.

        True when ``top_probability < metadata.uncertainty_threshold`` (never for
        a model without a threshold).
        """
        return bool(top_probability < self.metadata.uncertainty_threshold)

    def logits(self, features: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Logits of the graph, minus the voice profile's shift when there is one.

        Parameters
        ----------
        features : array_like, shape (batch, n_frames, n_mels) or (n_frames, n_mels)
            Normalised features from :class:`~ser_engine.features.Featurizer`.

        Returns
        -------
        ndarray, shape (batch, n_labels), float32

        Raises
        ------
        ModelError
            The graph produced NaN or infinite values.
        """
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3:
            raise ParameterError(f"features must have shape (batch, time, mels), got {x.shape}")
        meta = self.metadata
        if x.shape[2] != meta.feature_config.n_mels:
            raise ParameterError(f"features have {x.shape[2]} mel bands, the model needs {meta.feature_config.n_mels}")
        fixed_t = meta.input_shape[1]
        if fixed_t is not None and x.shape[1] != fixed_t:
            raise ParameterError(f"features have {x.shape[1]} frames, the model needs exactly {fixed_t}")
        if x.shape[0] == 0:
            return np.zeros((0, len(meta.labels)), dtype=np.float32)
        if not np.isfinite(x).all():
            raise ParameterError("features contain NaN or infinite values")
        try:
            out = self._session.run([meta.output_name], {meta.input_name: np.ascontiguousarray(x)})[0]
        except Exception as exc:
            raise SerError(f"inference failed: {exc}") from exc
        result = np.asarray(out, dtype=np.float32)
        if not np.isfinite(result).all():  # a broken model: never turn NaN into a label
            raise ModelError("the model produced non-finite output (NaN or infinity)")
        if self._shift is not None:
            result = result - self._shift
        return result

    def predict_features(self, features: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Calibrated probabilities, ``softmax(logits / temperature)``.

        Parameters
        ----------
        features : array_like, shape (batch, n_frames, n_mels) or (n_frames, n_mels)

        Returns
        -------
        ndarray, shape (batch, n_labels), float32
        """
        return softmax(self.logits(features), temperature=self.metadata.temperature)

    def predict_windows(self, windows: npt.ArrayLike, *, batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Featurize and classify analysis windows, in batches.

        Parameters
        ----------
        windows : array_like, shape (n_windows, window_samples)
            Audio at the model's sample rate.
        batch_size : int

        Returns
        -------
        ndarray, shape (n_windows, n_labels), float32
        """
        w = np.asarray(windows, dtype=np.float32)
        if w.ndim == 1:
            w = w[None]
        if w.ndim != 2:
            raise ParameterError(f"windows must have shape (n_windows, samples), got {w.shape}")
        if batch_size < 1:
            raise ParameterError("batch_size must be at least 1")
        out = np.empty((w.shape[0], len(self.labels)), dtype=np.float32)
        for i in range(0, w.shape[0], batch_size):
            out[i : i + batch_size] = self.predict_features(self.featurizer(w[i : i + batch_size]))
        return out
