"""Voice profiles: calibrating the model to one speaker, room and microphone.

A new voice shifts the model's outputs. A :class:`VoiceProfile` is made from
about ten seconds or more of one person's *neutral* speech: it stores how far
the model's mean logits on that speech lie from the model's mean logits on
neutral speech of reference speakers (``voice_calibration.reference_logits``
in ``model.json``). :meth:`ser_engine.model.EmotionModel.with_profile` gives a
model that subtracts that shift from every window's logits, before the
temperature and the softmax.

The speech is cut, gated and featurised exactly as ``ser analyze`` does
(:func:`ser_engine.analysis.iter_window_features`). Profiles are versioned
JSON files (never pickle); :class:`ProfileStore` keeps a user's profiles, one
file each, under :func:`default_profile_dir`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.audio import iter_audio_blocks
from ser_engine.core import iter_window_features
from ser_engine.errors import ParameterError, ProfileError, SerError
from ser_engine.model import EmotionModel, model_fingerprint, softmax

__all__ = [
    "MIN_SPEECH_S",
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "ProfileStore",
    "VoiceProfile",
    "default_profile_dir",
    "model_fingerprint",
    "profile_from_audio",
    "profile_from_files",
    "shift_from_logits",
]

PROFILE_FORMAT = "ser-voice-profile"
PROFILE_VERSION = 1
MIN_SPEECH_S = 8.0
MAX_PROFILE_BYTES = 1 << 20
BATCH = 32

FloatArray = npt.NDArray[np.float32]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class VoiceProfile:
    """One voice's calibration for one model.

    Attributes
    ----------
    name : str
        User-visible name, e.g. ``"Anna (desk mic)"``.
    model_name : str
        ``model.metadata.name`` of the model it was made with.
    model_sha256 : str
        SHA-256 hex of that model's ``model.onnx`` bytes.
    labels : tuple of str
        The model's labels, in the order of ``logit_shift``.
    logit_shift : tuple of float, length n_labels
        Subtracted from the logits of every window.
    speech_s : float
        Seconds of audio covered by the speech windows used (their union per
        source). Longer than the voiced time ``ser analyze`` reports as
        ``speech_s``: the minimum (:data:`MIN_SPEECH_S`) is stated in this unit.
    n_windows : int
        Speech windows used.
    created : str
        ISO 8601 UTC time of creation.
    sources : tuple of str
        File names (basenames) or ``("microphone",)``.
    before, after : dict
        Mean probability per label over the calibration speech windows
        without and with the profile.
    """

    name: str
    model_name: str
    model_sha256: str
    labels: tuple[str, ...]
    logit_shift: tuple[float, ...]
    speech_s: float
    n_windows: int
    created: str
    sources: tuple[str, ...]
    before: dict[str, float]
    after: dict[str, float]

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise ProfileError(f"profile {self.name!r}: {problem}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, ``{"format": PROFILE_FORMAT, "version": PROFILE_VERSION, ...}``."""
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "name": self.name,
            "model_name": self.model_name,
            "model_sha256": self.model_sha256,
            "labels": list(self.labels),
            "logit_shift": [float(v) for v in self.logit_shift],
            "speech_s": float(self.speech_s),
            "n_windows": int(self.n_windows),
            "created": self.created,
            "sources": list(self.sources),
            "before": {k: float(v) for k, v in self.before.items()},
            "after": {k: float(v) for k, v in self.after.items()},
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "profile") -> VoiceProfile:
        """Parse and validate a profile dict.

        Parameters
        ----------
        data : object
            Parsed JSON.
        source : str
            Named in error messages (the file path).

        Raises
        ------
        ProfileError
            Not a profile, unknown format or version, missing keys, wrong types,
            NaN/inf, labels and shift of different lengths.
        """
        if not isinstance(data, dict):
            raise ProfileError(f"{source}: not a voice profile (the JSON is not an object)")
        fmt = data.get("format")
        if fmt != PROFILE_FORMAT:
            raise ProfileError(f"{source}: not a voice profile (format {fmt!r}, expected {PROFILE_FORMAT!r})")
        version = data.get("version")
        if version != PROFILE_VERSION or isinstance(version, bool):
            raise ProfileError(
                f"{source}: voice profile version {version!r} is not supported (this ser reads version "
                f"{PROFILE_VERSION}); record a new profile"
            )
        missing = [k for k in ("name", "model_name", "model_sha256", "labels", "logit_shift", "speech_s",
                               "n_windows", "created", "sources", "before", "after") if k not in data]
        if missing:
            raise ProfileError(f"{source}: voice profile lacks {', '.join(missing)}")

        def bad(key: str, what: str) -> ProfileError:
            return ProfileError(f"{source}: voice profile {key} must be {what}, got {data[key]!r:.80}")

        for key in ("name", "model_name", "model_sha256", "created"):
            if not isinstance(data[key], str):
                raise bad(key, "a string")
        for key in ("labels", "sources"):
            if not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key]):
                raise bad(key, "a list of strings")
        if not isinstance(data["logit_shift"], list) or not all(_is_number(v) for v in data["logit_shift"]):
            raise bad("logit_shift", "a list of numbers")
        if not _is_number(data["speech_s"]):
            raise bad("speech_s", "a number")
        if not isinstance(data["n_windows"], int) or isinstance(data["n_windows"], bool):
            raise bad("n_windows", "an integer")
        for key in ("before", "after"):
            d = data[key]
            if not isinstance(d, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in d.items()):
                raise bad(key, "an object of label: probability")
        try:
            return cls(
                name=data["name"],
                model_name=data["model_name"],
                model_sha256=data["model_sha256"],
                labels=tuple(data["labels"]),
                logit_shift=tuple(float(v) for v in data["logit_shift"]),
                speech_s=float(data["speech_s"]),
                n_windows=int(data["n_windows"]),
                created=data["created"],
                sources=tuple(data["sources"]),
                before={k: float(v) for k, v in data["before"].items()},
                after={k: float(v) for k, v in data["after"].items()},
            )
        except ProfileError as exc:
            raise ProfileError(f"{source}: {exc}") from exc

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the profile as JSON, atomically (temporary file + rename), mode 0600.

        Returns
        -------
        Path
            ``path``.

        Raises
        ------
        ProfileError
            The file cannot be written (the message names it).
        """
        p = Path(path)
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
            tmp = None
        except OSError as exc:
            raise ProfileError(f"{p}: cannot write the voice profile ({exc.strerror or exc})") from exc
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VoiceProfile:
        """Read a profile file.

        Raises
        ------
        ProfileError
            Missing or unreadable file, not JSON, not a profile, unknown
            format or version, invalid values; the message names the path.
        """
        p = Path(path)
        try:
            size = p.stat().st_size
            if p.is_dir():
                raise ProfileError(f"{p}: is a folder, not a voice profile")
            if size > MAX_PROFILE_BYTES:
                raise ProfileError(f"{p}: not a voice profile (file too large, {size} bytes)")
            raw = p.read_bytes()
        except FileNotFoundError as exc:
            raise ProfileError(f"{p}: voice profile not found") from exc
        except OSError as exc:
            raise ProfileError(f"{p}: cannot read the voice profile ({exc.strerror or exc})") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"{p}: not a voice profile (not valid JSON: {exc})") from exc
        return cls.from_dict(data, source=str(p))


def _problem(p: VoiceProfile) -> str:
    """What is wrong with a profile's values ('' when nothing)."""
    if not p.name.strip():
        return "the name is empty"
    if len(p.labels) == 0:
        return "lists no labels"
    if len(p.logit_shift) != len(p.labels):
        return f"has {len(p.logit_shift)} shift values for {len(p.labels)} labels"
    if not all(math.isfinite(v) for v in p.logit_shift):
        return "logit_shift holds NaN or infinite values"
    if not re.fullmatch(r"[0-9a-f]{64}", p.model_sha256):
        return "model_sha256 is not a SHA-256 hex digest"
    if not (math.isfinite(p.speech_s) and p.speech_s >= 0):
        return f"speech_s must be a non-negative number, got {p.speech_s!r}"
    if p.n_windows < 0:
        return f"n_windows must not be negative, got {p.n_windows}"
    for key, d in (("before", p.before), ("after", p.after)):
        if not all(math.isfinite(v) for v in d.values()):
            return f"{key} holds NaN or infinite values"
    return ""


# ----------------------------------------------------------------------------- building
def shift_from_logits(
    *, window_logits: npt.ArrayLike, reference: npt.ArrayLike, strength: float = 1.0
) -> FloatArray:
    """The profile's logit shift: ``strength`` times (mean logits of the speech windows minus the reference).

    Parameters
    ----------
    window_logits : array_like, shape (n_windows, n_labels)
        Uncalibrated logits of the voice's neutral speech windows.
    reference : array_like, shape (n_labels,)
        The model's reference logits (``ModelMetadata.voice_reference``).
    strength : float
        In ``[0, 2]``: the fraction of the offset removed (``ModelMetadata.voice_strength``,
        chosen on validation voices); 1.0 removes it all.

    Returns
    -------
    ndarray, shape (n_labels,), float32
    """
    x = np.asarray(window_logits, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ParameterError(f"window_logits must have shape (n_windows >= 1, n_labels), got {x.shape}")
    if ref.ndim != 1 or ref.shape[0] != x.shape[1]:
        raise ParameterError(f"reference must have shape ({x.shape[1]},), got {ref.shape}")
    if not (np.isfinite(x).all() and np.isfinite(ref).all()):
        raise ParameterError("window_logits and reference must be finite")
    if not (isinstance(strength, (int, float)) and 0 <= strength <= 2):
        raise ParameterError(f"strength must be in [0, 2], got {strength!r}")
    shift: FloatArray = (float(strength) * (x.mean(axis=0) - ref)).astype(np.float32)
    return shift


def _check_options(model: EmotionModel, name: str, gate_sensitivity: float, min_speech_s: float) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ParameterError("a voice profile needs a non-empty name")
    if not (_is_number(gate_sensitivity) and 0 <= gate_sensitivity <= 1):
        raise ParameterError(f"gate_sensitivity must be in [0, 1], got {gate_sensitivity!r}")
    if not (_is_number(min_speech_s) and math.isfinite(min_speech_s) and min_speech_s >= 0):
        raise ParameterError(f"min_speech_s must be a non-negative number, got {min_speech_s!r}")
    if model.metadata.voice_reference is None:
        raise ProfileError(
            f"model {model.name} does not support voice calibration (its model.json has no "
            "voice_calibration.reference_logits)"
        )


class _Collector:
    """Speech-window logits (uncalibrated) and speech seconds of one or more streams."""

    def __init__(self, model: EmotionModel, gate_sensitivity: float) -> None:
        self.model = model.with_profile(None)
        self.gate_sensitivity = gate_sensitivity
        self.logits: list[FloatArray] = []
        self.speech_s = 0.0
        self.n_windows = 0

    def add(self, blocks: Iterable[FloatArray]) -> None:
        """Window, gate and featurise one stream (as ``ser analyze``) and keep its speech logits."""
        m = self.model
        covered_end = 0.0
        batch: list[FloatArray] = []

        def flush() -> None:
            if batch:
                self.logits.append(m.logits(m.featurizer.normalize(np.stack(batch))))
                batch.clear()

        for wf in iter_window_features(blocks, config=m.feature_config, featurizer=m.featurizer,
                                       gate_sensitivity=self.gate_sensitivity):
            if not wf.speech or wf.log_mel is None:
                continue
            # seconds covered by the union of speech windows, as file analysis counts them
            self.speech_s += max(0.0, wf.end_s - max(wf.start_s, covered_end))
            covered_end = max(covered_end, wf.end_s)
            self.n_windows += 1
            batch.append(wf.log_mel)
            if len(batch) >= BATCH:
                flush()
        flush()

    def profile(self, *, name: str, sources: Sequence[str], where: str, min_speech_s: float) -> VoiceProfile:
        m = self.model
        if self.n_windows == 0 or self.speech_s < min_speech_s:
            found = "no speech found" if self.n_windows == 0 else f"only {self.speech_s:.1f} s of speech found"
            raise ProfileError(f"{where}: {found}; need at least {min_speech_s:g} s of normal speech")
        logits = np.concatenate(self.logits)
        reference = np.asarray(m.metadata.voice_reference, dtype=np.float32)
        shift = shift_from_logits(window_logits=logits, reference=reference, strength=m.metadata.voice_strength)
        t = m.metadata.temperature
        before = softmax(logits, temperature=t).mean(axis=0)
        after = softmax(logits - shift, temperature=t).mean(axis=0)
        labels = m.labels
        return VoiceProfile(
            name=name.strip(),
            model_name=m.name,
            model_sha256=model_fingerprint(m),
            labels=labels,
            logit_shift=tuple(float(v) for v in shift),
            speech_s=float(self.speech_s),
            n_windows=int(self.n_windows),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            sources=tuple(sources),
            before={lab: float(v) for lab, v in zip(labels, before, strict=True)},
            after={lab: float(v) for lab, v in zip(labels, after, strict=True)},
        )


def profile_from_audio(
    audio: npt.ArrayLike,
    *,
    model: EmotionModel,
    name: str,
    sources: Sequence[str] = ("microphone",),
    gate_sensitivity: float = 0.5,
    min_speech_s: float = MIN_SPEECH_S,
) -> VoiceProfile:
    """Make a voice profile from a recording of neutral speech.

    The audio is cut into the model's windows, gated and featurised exactly as
    file analysis does (:func:`ser_engine.analysis.iter_window_features`); the
    speech windows' uncalibrated logits give the shift
    (:func:`shift_from_logits`).

    Parameters
    ----------
    audio : array_like, shape (n,), float32
        Mono audio at ``model.feature_config.sample_rate``.
    model : EmotionModel
        Its ``metadata.voice_reference`` is needed; a profile it already has is ignored.
    name : str
        The profile's name.
    sources : sequence of str
        Recorded in the profile (default ``("microphone",)``).
    gate_sensitivity : float
        Speech gate sensitivity in [0, 1].
    min_speech_s : float
        Least seconds of gated speech accepted.

    Returns
    -------
    VoiceProfile

    Raises
    ------
    ProfileError
        The model cannot be calibrated, or too little speech (the message says
        how much was found).
    ParameterError
        Bad parameters or audio that is not a finite 1-D array.
    """
    _check_options(model, name, gate_sensitivity, min_speech_s)
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1:
        raise ParameterError(f"audio must be mono with shape (n,), got {y.shape}")
    if not np.isfinite(y).all():
        raise ParameterError("audio contains NaN or infinite samples")
    col = _Collector(model, gate_sensitivity)
    col.add([y] if y.shape[0] else [])
    where = ", ".join(sources) or "recording"
    return col.profile(name=name, sources=sources, where=where, min_speech_s=min_speech_s)


def profile_from_files(
    paths: Sequence[str | os.PathLike[str]],
    *,
    model: EmotionModel,
    name: str,
    gate_sensitivity: float = 0.5,
    min_speech_s: float = MIN_SPEECH_S,
) -> VoiceProfile:
    """Make a voice profile from audio files of one person's neutral speech.

    Each file is decoded block-wise with :func:`ser_engine.audio.iter_audio_blocks`
    and analysed as ``ser analyze`` would; the speech windows of all files are pooled.

    Parameters
    ----------
    paths : sequence of path-like
    model, name, gate_sensitivity, min_speech_s : see :func:`profile_from_audio`

    Returns
    -------
    VoiceProfile
        ``sources`` holds the files' base names.

    Raises
    ------
    ProfileError
        A file cannot be read (the message names it and the reason), the model
        cannot be calibrated, or too little speech over all files.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ParameterError("profile_from_files needs at least one file")
    _check_options(model, name, gate_sensitivity, min_speech_s)
    col = _Collector(model, gate_sensitivity)
    sr = model.feature_config.sample_rate
    for f in files:
        if f.is_dir():
            raise ProfileError(f"{f}: is a folder; give the audio files")
        try:
            col.add(iter_audio_blocks(f, sample_rate=sr))
        except ProfileError:
            raise
        except (SerError, OSError, ValueError, RuntimeError) as exc:
            text = str(exc).strip() or type(exc).__name__
            if isinstance(exc, OSError) and exc.strerror:
                text = exc.strerror
            raise ProfileError(text if str(f) in text else f"{f}: {text}") from exc
    where = str(files[0]) if len(files) == 1 else f"{len(files)} files ({', '.join(f.name for f in files[:3])}" + (
        ", …)" if len(files) > 3 else ")")
    return col.profile(name=name, sources=[f.name for f in files], where=where, min_speech_s=min_speech_s)


# ----------------------------------------------------------------------------- store
def default_profile_dir() -> Path:
    """``$XDG_DATA_HOME/ser/profiles`` (``~/.local/share/ser/profiles`` by default)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "ser" / "profiles"


def _slug(name: str) -> str:
    s = re.sub(r"[^0-9a-z]+", "-", name.casefold()).strip("-")
    return s[:60].rstrip("-") or "profile"


class ProfileStore:
    """A user's voice profiles: one JSON file each in a folder.

    Parameters
    ----------
    directory : Path, optional
        Defaults to :func:`default_profile_dir`; created (mode 0700) on the first save.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_profile_dir()

    def _files(self) -> Iterator[Path]:
        try:
            entries = sorted(self.directory.iterdir())
        except OSError:
            return
        for p in entries:
            if p.suffix == ".json" and not p.name.startswith(".") and not p.is_dir():
                yield p

    def list(self) -> list[tuple[Path, VoiceProfile | ProfileError]]:
        """Every profile file, sorted by profile name; broken files come with their error. Never raises."""
        out: list[tuple[Path, VoiceProfile | ProfileError]] = []
        for p in self._files():
            try:
                out.append((p, VoiceProfile.load(p)))
            except ProfileError as exc:
                out.append((p, exc))
            except Exception as exc:  # never raise from a listing
                out.append((p, ProfileError(f"{p}: cannot read the voice profile ({exc})")))

        def key(item: tuple[Path, VoiceProfile | ProfileError]) -> tuple[str, str]:
            path, prof = item
            return (prof.name.casefold() if isinstance(prof, VoiceProfile) else path.stem.casefold(), path.stem)

        return sorted(out, key=key)

    def _free_path(self, name: str, *, keep: Path | None = None) -> Path:
        slug = _slug(name)
        candidate = self.directory / f"{slug}.json"
        n = 2
        while candidate.exists() and candidate != keep:
            candidate = self.directory / f"{slug}-{n}.json"
            n += 1
        return candidate

    def _ensure_dir(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ProfileError(f"{self.directory}: cannot create the profile folder ({exc.strerror or exc})") from exc

    def save(self, profile: VoiceProfile) -> Path:
        """Store a profile under a new file named after it (a slug of the name, made unique).

        Returns
        -------
        Path
            The new file.
        """
        self._ensure_dir()
        return profile.save(self._free_path(profile.name))

    def rename(self, path: Path, new_name: str) -> Path:
        """Give a stored profile a new name (and a matching file name).

        Returns
        -------
        Path
            The profile's file after the rename.
        """
        if not isinstance(new_name, str) or not new_name.strip():
            raise ParameterError("a voice profile needs a non-empty name")
        path = Path(path)
        profile = replace(VoiceProfile.load(path), name=new_name.strip())
        self._ensure_dir()
        target = self._free_path(profile.name, keep=path)
        profile.save(target)
        if target != path:
            self.delete(path)
        return target

    def delete(self, path: Path) -> None:
        """Remove a stored profile file (no error when it is already gone)."""
        try:
            Path(path).unlink(missing_ok=True)
        except OSError as exc:
            raise ProfileError(f"{path}: cannot delete the voice profile ({exc.strerror or exc})") from exc

    def find(self, name_or_path: str) -> Path:
        """The file of a profile given by a path, its exact name or its file stem.

        Raises
        ------
        ProfileError
            No such profile, or the name matches several.
        """
        text = str(name_or_path)
        p = Path(text).expanduser()
        if p.is_file():
            return p
        if os.sep in text or text.endswith(".json"):
            raise ProfileError(f"{text}: voice profile not found")
        entries = self.list()
        for match in (
            lambda path, prof: isinstance(prof, VoiceProfile) and prof.name == text,
            lambda path, prof: path.stem == text,
        ):
            found = [path for path, prof in entries if match(path, prof)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise ProfileError(
                    f"{text!r} names {len(found)} voice profiles ({', '.join(str(f) for f in found)}); give a path"
                )
        raise ProfileError(f"no voice profile named {text!r} in {self.directory} (and no such file)")
