"""ONNX Runtime wrapper for the emotion model and its JSON metadata.

A model is a directory holding ``model.onnx`` (input ``features`` of shape
``(batch, time, n_features)`` float32, ``n_features`` given by the feature set of
``model.json``'s ``feature_config``, output ``logits`` of shape
``(batch, n_labels)``) and ``model.json`` (:class:`ModelMetadata`). The JSON is
the single source of truth at run time: labels, :class:`FeatureConfig` with
its normalisation statistics, calibration temperature, provenance. Nothing is
unpickled, ever. The metadata and softmax live in :mod:`ser_engine.model_meta`
(re-exported here).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.errors import ModelError, NonFiniteOutputError, ParameterError, ProfileError, SerError
from ser_engine.features import Featurizer
from ser_engine.logs import get_logger
from ser_engine.model_meta import (
    FORMAT_VERSION,
    KNOWN_LABELS,
    META_FILE,
    MODEL_FILE,
    ModelMetadata,
    softmax,
)

if TYPE_CHECKING:
    from ser_engine.profile import VoiceProfile

__all__ = [
    "FORMAT_VERSION",
    "KNOWN_LABELS",
    "META_FILE",
    "MODEL_FILE",
    "EmotionModel",
    "ModelMetadata",
    "default_model_dir",
    "model_fingerprint",
    "softmax",
]

logger = get_logger(__name__)


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
        # onnxruntime's errors (Fail, InvalidProtobuf, NoSuchFile, ...) derive from Exception directly and live
        # in a private module: catch broadly, keep the cause chained for the log's traceback
        except Exception as exc:
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
        model = cls(onnx_path, meta, threads=threads)
        logger.debug("model %s (%s) loaded from %s, %d thread(s)", meta.name, ", ".join(meta.labels), d, threads)
        return model

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
            raise ModelError(f"{where}: graph input has shape {shape}, expected (batch, time, features)")
        fc = meta.feature_config
        if isinstance(shape[2], int) and shape[2] != fc.n_features:
            raise ModelError(
                f"{where}: graph input has {shape[2]} values per frame but model.json's feature set "
                f"{fc.features!r} gives {fc.n_features}"
            )
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
        """Emotion labels, in the order of the model's outputs."""
        return self.metadata.labels

    @property
    def feature_config(self) -> FeatureConfig:
        """Features the model was trained on (``model.json``'s ``feature_config``)."""
        return self.metadata.feature_config

    @property
    def name(self) -> str:
        """Name of the model (``model.json``'s ``name``)."""
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
        """Return a model calibrated to one voice, sharing this model's session, metadata and featurizer.

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
        features : array_like, shape (batch, n_frames, n_features) or (n_frames, n_features)
            Normalised features from :class:`~ser_engine.features.Featurizer`.

        Returns
        -------
        ndarray, shape (batch, n_labels), float32

        Raises
        ------
        NonFiniteOutputError
            The graph produced NaN or infinite values (a :class:`ModelError`).
        """
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3:
            raise ParameterError(f"features must have shape (batch, time, features), got {x.shape}")
        meta = self.metadata
        if x.shape[2] != meta.feature_config.n_features:
            raise ParameterError(
                f"features have {x.shape[2]} values per frame, the model needs {meta.feature_config.n_features}"
            )
        fixed_t = meta.input_shape[1]
        if fixed_t is not None and x.shape[1] != fixed_t:
            raise ParameterError(f"features have {x.shape[1]} frames, the model needs exactly {fixed_t}")
        if x.shape[0] == 0:
            return np.zeros((0, len(meta.labels)), dtype=np.float32)
        if not np.isfinite(x).all():
            raise ParameterError("features contain NaN or infinite values")
        try:
            out = self._session.run([meta.output_name], {meta.input_name: np.ascontiguousarray(x)})[0]
        except Exception as exc:  # onnxruntime's errors derive from Exception directly (see __init__)
            raise SerError(f"inference failed: {exc}") from exc
        result = np.asarray(out, dtype=np.float32)
        if not np.isfinite(result).all():  # a broken model: never turn NaN into a label
            raise NonFiniteOutputError("the model produced non-finite output (NaN or infinity)")
        if self._shift is not None:
            result = result - self._shift
        return result

    def predict_features(self, features: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Calibrated probabilities, ``softmax(logits / temperature)``.

        Parameters
        ----------
        features : array_like, shape (batch, n_frames, n_features) or (n_frames, n_features)

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
