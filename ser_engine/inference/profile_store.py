"""Voice profiles on disk: the versioned JSON format (:class:`VoiceProfile`) and a user's folder of them.

Profiles are JSON files (never pickle), validated on load, written
atomically; :class:`ProfileStore` keeps one file per profile under
:func:`default_profile_dir`. Making a profile from speech is
:mod:`ser_engine.inference.profile`'s job; its public names include these.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ser_engine.errors import ParameterError, ProfileError
from ser_engine.logs import get_logger

__all__ = ["MAX_LOGIT_SHIFT", "MAX_PROFILE_BYTES", "PROFILE_FORMAT", "PROFILE_VERSION", "ProfileStore", "VoiceProfile",
           "default_profile_dir"]

logger = get_logger(__name__)

PROFILE_FORMAT = "ser-voice-profile"
PROFILE_VERSION = 1
MAX_PROFILE_BYTES = 1 << 20
MAX_LOGIT_SHIFT = 100.0
"""Largest magnitude of a profile's logit shift. Real profiles shift the logits by a few units (a
model's logits themselves lie within about ten of zero); a shift of 100 already decides every
softmax, and larger values (up to 1e300, infinite once the model subtracts them in float32) come
only from a damaged or hand-edited file, so they are refused when it is read."""


def is_number(v: Any) -> bool:
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
        That model's fingerprint (:attr:`ser_engine.inference.model.EmotionModel.fingerprint`, SHA-256
        hex of its set of files; profiles made before it covered the set hold the SHA-256 of
        ``model.onnx`` alone, which the model still accepts).
    labels : tuple of str
        The model's labels, in the order of ``logit_shift``.
    logit_shift : tuple of float, length n_labels
        Subtracted from the logits of every window.
    speech_s : float
        Seconds of speech used, measured as ``ser analyze`` measures a file's
        ``speech_s`` (voiced 20 ms gate frames of the speech windows, pauses under
        0.3 s bridged), summed over the sources; the minimum
        (:data:`ser_engine.inference.profile.MIN_SPEECH_S`) is stated in this unit. Profiles
        made before this measure hold the union of their speech windows (longer).
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
        if not isinstance(data["logit_shift"], list) or not all(is_number(v) for v in data["logit_shift"]):
            raise bad("logit_shift", "a list of numbers")
        if not is_number(data["speech_s"]):
            raise bad("speech_s", "a number")
        if not isinstance(data["n_windows"], int) or isinstance(data["n_windows"], bool):
            raise bad("n_windows", "an integer")
        for key in ("before", "after"):
            d = data[key]
            if not isinstance(d, dict) or not all(isinstance(k, str) and is_number(v) for k, v in d.items()):
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
    """Say what is wrong with a profile's values ('' when nothing)."""
    if not p.name.strip():
        return "the name is empty"
    if len(p.labels) == 0:
        return "lists no labels"
    if len(p.logit_shift) != len(p.labels):
        return f"has {len(p.logit_shift)} shift values for {len(p.labels)} labels"
    if not all(math.isfinite(v) for v in p.logit_shift):
        return "logit_shift holds NaN or infinite values"
    worst = max(abs(v) for v in p.logit_shift)
    if worst > MAX_LOGIT_SHIFT:
        return (f"logit_shift holds {worst:g}, beyond the sane range ±{MAX_LOGIT_SHIFT:g} "
                "(a damaged or hand-edited file); record a new profile")
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
            except Exception as exc:
                # A listing never raises (the app's profile menu must open whatever is in the folder);
                # VoiceProfile.load turns every bad file into a ProfileError, so this is a bug: log its traceback.
                logger.error("%s: cannot read the voice profile", p, exc_info=True)
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
        """Find the file of a profile given by a path, its exact name or its file stem.

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
        by_name = [path for path, prof in entries if isinstance(prof, VoiceProfile) and prof.name == text]
        by_stem = [path for path, _ in entries if path.stem == text]
        for found in (by_name, by_stem):  # an exact profile name first, then a file stem
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise ProfileError(
                    f"{text!r} names {len(found)} voice profiles ({', '.join(str(f) for f in found)}); give a path"
                )
        raise ProfileError(f"no voice profile named {text!r} in {self.directory} (and no such file)")
