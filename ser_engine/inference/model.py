"""ONNX Runtime wrapper for the emotion model and its JSON metadata: the one model path.

A model is a set of files in one directory (:data:`MODEL_FILES`): ``model.onnx``
(input ``features`` of shape ``(batch, time, n_features)`` float32, ``n_features``
given by the feature set of ``model.json``'s ``feature_config``, output ``logits``
of shape ``(batch, n_labels)``, and optionally a second output of affect logits,
:class:`~ser_engine.inference.model_meta.AffectOutput`) and ``model.json``
(:class:`ModelMetadata`). The JSON is the single source of truth at run time:
labels, :class:`FeatureConfig` with its normalisation statistics, calibration
temperatures, provenance. Nothing is unpickled, ever. The metadata and the output
functions live in :mod:`ser_engine.inference.model_meta` (re-exported here).

Every caller that classifies windows (file analysis, voice profiles, the live
streamer, training's evaluation of an exported model) goes through
:meth:`EmotionModel.predict`: un-normalised feature windows in, normalised with
the model's own statistics, the graph run in batches, the voice profile's shift
subtracted, ``softmax(logits / temperature)`` (and the affect scores) out.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.dsp.features import Featurizer
from ser_engine.errors import ModelError, NonFiniteOutputError, ParameterError, ProfileError, SerError
from ser_engine.inference.model_meta import (
    FORMAT_VERSION,
    KNOWN_LABELS,
    META_FILE,
    MODEL_FILE,
    MODEL_FILES,
    AffectOutput,
    ModelMetadata,
    calibrated_logits,
    sigmoid,
    softmax,
)
from ser_engine.logs import get_logger

if TYPE_CHECKING:
    from ser_engine.inference.profile_store import VoiceProfile

__all__ = [
    "BATCH",
    "FORMAT_VERSION",
    "KNOWN_LABELS",
    "META_FILE",
    "MODEL_FILE",
    "MODEL_FILES",
    "AffectOutput",
    "EmotionModel",
    "ModelMetadata",
    "ModelOutput",
    "calibrated_logits",
    "default_model_dir",
    "model_fingerprint",
    "sigmoid",
    "softmax",
]

logger = get_logger(__name__)
FloatArray = npt.NDArray[np.float32]

BATCH = 32
"""Windows per graph call: :meth:`EmotionModel.predict`'s default, and how many windows file
analysis and voice profiles collect before they call it."""


def model_fingerprint(model: EmotionModel) -> str:
    """Return the model set's fingerprint (:attr:`EmotionModel.fingerprint`), computed once per model.

    A :class:`~ser_engine.inference.profile.VoiceProfile` records it, so a profile is
    only ever applied to the model it was made with.
    """
    return model.fingerprint


@dataclass(frozen=True)
class ModelOutput:
    """What the model says about a batch of windows (:meth:`EmotionModel.predict`).

    Attributes
    ----------
    logits : ndarray, shape (n_windows, n_labels), float32
        The graph's emotion logits minus the voice profile's shift (when the model has one).
    probabilities : ndarray, shape (n_windows, n_labels), float32
        ``softmax(logits / temperature)``; rows sum to 1.
    affect : ndarray, shape (n_windows, n_affect), float32, or None
        ``sigmoid(affect_logit / affect_temperature)`` per dimension
        (:attr:`EmotionModel.affect_names`); None for a model without an affect output.
    """

    logits: FloatArray
    probabilities: FloatArray
    affect: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.logits.shape[0])


def _set_digests(paths: list[Path]) -> tuple[str, str]:
    """Return (set fingerprint, SHA-256 of the first file alone) of the model set's files, read once.

    The set fingerprint is the SHA-256 of, file after file: its name (UTF-8), a NUL
    byte, its size (8 bytes, little-endian) and its bytes.

    Raises
    ------
    ModelError
        A file cannot be read (the message names it).
    """
    whole = hashlib.sha256()
    first = hashlib.sha256()
    for i, path in enumerate(paths):
        try:
            with path.open("rb") as fh:
                whole.update(path.name.encode("utf-8") + b"\0" + os.fstat(fh.fileno()).st_size.to_bytes(8, "little"))
                while chunk := fh.read(1 << 20):
                    whole.update(chunk)
                    if i == 0:
                        first.update(chunk)
        except OSError as exc:
            raise ModelError(f"{path}: cannot read the model file ({exc.strerror or exc})") from exc
    return whole.hexdigest(), first.hexdigest()


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
    return Path(__file__).resolve().parents[2] / "models"


class EmotionModel:
    """The emotion classifier: ONNX Runtime session plus its metadata.

    Use :meth:`load`. The session runs on ``threads`` intra-op threads (one by
    default, so that live inference leaves the other cores alone) with all
    graph optimisations on. Classify windows with :meth:`predict`.

    Parameters
    ----------
    model_path : Path
        ``model.onnx``; the other files of the set (:data:`MODEL_FILES`) are beside it.
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
        affect = metadata.affect
        self._outputs = [metadata.output_name] + ([] if affect is None else [affect.output_name])
        self._digests: tuple[str, str] | None = None
        self._profile: VoiceProfile | None = None
        self._shift: FloatArray | None = None
        # model.json's own threshold, kept apart from metadata.uncertainty_threshold, which a user's
        # minimum confidence replaces (with_min_confidence): None gives this one back
        self._own_threshold = metadata.uncertainty_threshold
        self._min_confidence: float | None = None

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
        if d.exists() and not d.is_dir():  # e.g. --model path/to/model.onnx: name what is expected
            raise ModelError(f"{d}: not a folder; a model is the folder holding {MODEL_FILE} and {META_FILE}"
                             + (f" (here perhaps {d.parent})" if d.name == MODEL_FILE else ""))
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
        affect = meta.affect
        if affect is not None:
            if affect.output_name not in names:
                raise ModelError(
                    f"{where}: graph has no output {affect.output_name!r} for model.json's affect (outputs: {names})"
                )
            ashape = list(outputs[names.index(affect.output_name)].shape)
            if len(ashape) != 2 or (isinstance(ashape[1], int) and ashape[1] != len(affect.names)):
                raise ModelError(
                    f"{where}: graph output {affect.output_name!r} has shape {ashape}, but model.json's affect "
                    f"names {len(affect.names)} dimensions ({', '.join(affect.names)})"
                )
        head = meta.voice_head_output
        if head is not None:
            if head not in names:
                raise ModelError(f"{where}: graph has no output {head!r} for model.json's voice calibration "
                                 f"head (outputs: {names})")
            vshape = list(outputs[names.index(head)].shape)
            if len(vshape) != 2 or (isinstance(vshape[1], int) and vshape[1] != len(meta.labels)):
                raise ModelError(f"{where}: graph output {head!r} has shape {vshape}, but the voice calibration "
                                 f"head needs one logit per label ({len(meta.labels)})")

    # ------------------------------------------------------------------
    @property
    def labels(self) -> tuple[str, ...]:
        """Emotion labels, in the order of the model's outputs."""
        return self.metadata.labels

    @property
    def affect_names(self) -> tuple[str, ...]:
        """Affect dimensions of the second output (e.g. ``("arousal", "valence")``); ``()`` without one."""
        affect = self.metadata.affect
        return () if affect is None else affect.names

    @property
    def feature_config(self) -> FeatureConfig:
        """Features the model was trained on (``model.json``'s ``feature_config``)."""
        return self.metadata.feature_config

    @property
    def name(self) -> str:
        """Name of the model (``model.json``'s ``name``)."""
        return self.metadata.name

    @property
    def files(self) -> tuple[Path, ...]:
        """The files of the model set (:data:`MODEL_FILES`, beside ``model.onnx``), in fingerprint order."""
        return tuple(self.path.parent / name if name != MODEL_FILE else self.path for name in MODEL_FILES)

    def _read_digests(self) -> tuple[str, str]:
        if self._digests is None:
            self._digests = _set_digests(list(self.files))
        return self._digests

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex of the whole model set (read once, then cached).

        It covers every file of :attr:`files` in their fixed order
        (:data:`MODEL_FILES`): for each, its name, a NUL byte, its size as 8
        little-endian bytes and its content. So a profile is tied to the graph
        *and* to what ``model.json`` says about it (normalisation statistics,
        reference logits, temperature): retraining, or editing either file,
        gives another fingerprint.

        Profiles written before the fingerprint covered the set hold the SHA-256
        of ``model.onnx`` alone; :meth:`with_profile` still accepts them for a
        model whose ``model.onnx`` has exactly those bytes (the check they were
        made under), and every new profile records this fingerprint.
        """
        return self._read_digests()[0]

    def _accepts_fingerprint(self, sha: str) -> bool:
        whole, onnx_only = self._read_digests()
        return sha in (whole, onnx_only)

    @property
    def profile(self) -> VoiceProfile | None:
        """The voice profile whose shift :meth:`predict` subtracts (None: uncalibrated)."""
        return self._profile

    def with_profile(self, profile: VoiceProfile | None) -> EmotionModel:
        """Return a model calibrated to one voice, sharing this model's session, metadata and featurizer.

        Its :meth:`predict` applies ``profile.logit_shift`` to the logits
        (:func:`calibrated_logits`: subtracted, or with a voice calibration head a blend
        of the two heads), so everything built on the model (file analysis, the streamer, live
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
            The profile was made with another model (another :attr:`fingerprint`)
            or for other labels.
        """
        if profile is not None:
            if not self._accepts_fingerprint(profile.model_sha256):
                sha = self.fingerprint
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

    @property
    def default_min_confidence(self) -> float:
        """The threshold of ``model.json`` (``uncertainty_threshold``), whatever :meth:`with_min_confidence` set."""
        return self._own_threshold

    @property
    def min_confidence(self) -> float | None:
        """The user's minimum confidence set by :meth:`with_min_confidence` (None: the model's own)."""
        return self._min_confidence

    def with_min_confidence(self, value: float | None) -> EmotionModel:
        """Return a model that marks a prediction *uncertain* below the user's minimum confidence.

        The copy's :attr:`metadata` has ``uncertainty_threshold`` replaced by ``value``;
        everything that asks the model (:meth:`is_uncertain`: file analysis, the
        streamer; ``metadata.uncertainty_threshold``: the app's batch chart) follows it.
        It shares this model's session and featurizer and keeps its voice profile
        (:meth:`with_profile` keeps the minimum confidence in turn, so the two combine
        in either order). The fingerprint is the model set's files, so voice profiles
        still apply. This object is not modified.

        Parameters
        ----------
        value : float or None
            In ``[0, 1)``: a top probability below it is uncertain; 0: never
            uncertain. None: the model's own threshold (:attr:`default_min_confidence`).

        Returns
        -------
        EmotionModel

        Raises
        ------
        ParameterError
            ``value`` is not a number in ``[0, 1)``.
        """
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value) and 0 <= value < 1):
            raise ParameterError(f"the minimum confidence must be a number at least 0 and less than 1 "
                                 f"(0: never uncertain), got {value!r}")
        threshold = self._own_threshold if value is None else float(value)
        other = copy.copy(self)
        other.metadata = dataclasses.replace(self.metadata, uncertainty_threshold=threshold)
        other._min_confidence = None if value is None else threshold
        return other

    def is_uncertain(self, top_probability: float) -> bool:
        """Whether a prediction with this top probability is *uncertain*.

        True when ``top_probability < metadata.uncertainty_threshold`` (never for
        a model without a threshold, or with a minimum confidence of 0).
        """
        return bool(top_probability < self.metadata.uncertainty_threshold)

    def predict(self, frames: npt.ArrayLike, *, batch_size: int = BATCH) -> ModelOutput:
        """Classify feature windows: normalise, run the graph in batches, shift, calibrate.

        Parameters
        ----------
        frames : array_like, shape (n_windows, n_frames, n_features)
            Un-normalised feature frames of the model's feature set
            (:meth:`~ser_engine.dsp.features.Featurizer.frames`, as
            :func:`~ser_engine.dsp.core.iter_window_features` yields them); they are
            normalised here with the model's own statistics.
        batch_size : int
            Windows per graph call (``>= 1``), at most the model's ``max_batch``.

        Returns
        -------
        ModelOutput
            ``logits`` (a voice profile applied, :func:`calibrated_logits`), ``probabilities`` =
            ``softmax(logits / temperature)``, ``affect`` scores or None.

        Raises
        ------
        ParameterError
            Wrong shape, a frame count a fixed-length graph does not take, or
            non-finite values.
        NonFiniteOutputError
            The graph produced NaN or infinite values (a :class:`ModelError`).
        SerError
            ONNX Runtime failed.
        """
        x, batch_size = self._checked(frames, batch_size)
        meta = self.metadata
        n = x.shape[0]
        affect = meta.affect
        blend = self._shift is not None and meta.voice_head_output is not None
        outputs = self._outputs + ([meta.voice_head_output] if blend and meta.voice_head_output else [])
        logits = np.empty((n, len(meta.labels)), dtype=np.float32)
        scores = None if affect is None else np.empty((n, len(affect.names)), dtype=np.float32)
        head = np.empty((n, len(meta.labels)), dtype=np.float32) if blend else None
        for i in range(0, n, batch_size):
            outs = self._run(self.featurizer.normalize(x[i : i + batch_size]), outputs)
            logits[i : i + batch_size] = outs[0]
            if scores is not None:
                scores[i : i + batch_size] = outs[1]
            if head is not None:
                head[i : i + batch_size] = outs[-1]
        if self._shift is not None:
            logits = calibrated_logits(logits=logits, head_logits=head, shift=self._shift,
                                       strength=meta.voice_strength)
        probabilities = softmax(logits, temperature=meta.temperature)
        if scores is not None and affect is not None:
            scores = sigmoid(scores, temperature=affect.temperature)
        return ModelOutput(logits=logits, probabilities=probabilities, affect=scores)

    def profile_logits(self, frames: npt.ArrayLike, *, batch_size: int = BATCH) -> FloatArray:
        """Compute the logits a voice profile is measured on, for feature windows (no profile applied).

        The voice calibration head's logits when the model has one
        (``metadata.voice_head_output``), else the model's own logits.

        Parameters
        ----------
        frames : array_like, shape (n_windows, n_frames, n_features)
            As :meth:`predict` takes them.
        batch_size : int

        Returns
        -------
        ndarray, shape (n_windows, n_labels), float32
        """
        head = self.metadata.voice_head_output
        if head is None:
            return self.with_profile(None).predict(frames, batch_size=batch_size).logits
        x, batch_size = self._checked(frames, batch_size)
        out = np.empty((x.shape[0], len(self.labels)), dtype=np.float32)
        for i in range(0, x.shape[0], batch_size):
            out[i : i + batch_size] = self._run(self.featurizer.normalize(x[i : i + batch_size]), [head])[0]
        return out

    def _checked(self, frames: npt.ArrayLike, batch_size: int) -> tuple[FloatArray, int]:
        """Validate feature windows and a batch size; the windows as float32 and the batch size the graph takes."""
        x = np.asarray(frames, dtype=np.float32)
        meta = self.metadata
        if x.ndim != 3:
            raise ParameterError(f"frames must have shape (n_windows, n_frames, n_features), got {x.shape}")
        if x.shape[2] != meta.feature_config.n_features:
            raise ParameterError(
                f"frames have {x.shape[2]} values per frame, the model needs {meta.feature_config.n_features}"
            )
        fixed_t = meta.input_shape[1]
        if fixed_t is not None and x.shape[1] != fixed_t:
            raise ParameterError(f"frames have {x.shape[1]} time steps, the model needs exactly {fixed_t}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not np.isfinite(x).all():
            raise ParameterError("features contain NaN or infinite values")
        if meta.max_batch is not None:
            batch_size = min(batch_size, meta.max_batch)
        return x, batch_size

    def _run(self, x: FloatArray, outputs: list[str]) -> list[FloatArray]:
        """Run the graph on normalised features (batch, time, n_features): the ``outputs`` asked for, finite."""
        try:
            outs = self._session.run(outputs, {self.metadata.input_name: np.ascontiguousarray(x)})
        except Exception as exc:  # onnxruntime's errors derive from Exception directly (see __init__)
            raise SerError(f"inference failed: {exc}") from exc
        result = [np.asarray(o, dtype=np.float32) for o in outs]
        if not all(np.isfinite(r).all() for r in result):  # a broken model: never turn NaN into a label
            raise NonFiniteOutputError("the model produced non-finite output (NaN or infinity)")
        return result
