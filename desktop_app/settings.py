"""User preferences held in a model object backed by :class:`QSettings` (not in widgets)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QByteArray, QObject, QSettings, Signal

from ser_engine.errors import ParameterError
from ser_engine.inference.model import EmotionModel
from ser_engine.inference.model_meta import ConfidenceTradeoff
from ser_engine.live.session import settings_for
from ser_engine.live.stream import StreamSettings
from ser_engine.timing import MAX_WINDOW_S

__all__ = ["TAB_COUNT", "AppSettings", "default_settings"]

ORGANISATION = "ser"
APPLICATION = "ser-app"
TAB_COUNT = 2  # live microphone, files

log = logging.getLogger("ser.app")
T = TypeVar("T")


def default_settings() -> QSettings:
    """Return the user's settings store (INI file in the platform's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


# ---------------------------------------------------------------------- parsers
# Each takes what QSettings read (str, list of str for comma-separated INI values, QByteArray
# for @ByteArray(...), or a Python value written in this session) and returns the typed value,
# or raises ValueError with the reason.
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _as_float(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"not a number ({type(raw).__name__})")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _as_min_confidence(raw: object) -> float:
    value = _as_float(raw)
    if not 0 <= value < 1:
        raise ValueError("not at least 0 and less than 1")
    return value


def _as_str(raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"not text ({type(raw).__name__})")
    return raw


def _as_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise ValueError("not true or false")


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, QByteArray):
        return bytes(raw.data())
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    raise ValueError(f"not binary data ({type(raw).__name__})")


def _as_tab(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ValueError(f"not a whole number ({type(raw).__name__})")
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("not a whole number") from None
    if not 0 <= value < TAB_COUNT:
        raise ValueError(f"out of range 0..{TAB_COUNT - 1}")
    return value


def _as_folder(raw: object) -> str:
    folder = _as_str(raw)
    if not folder:
        return folder
    if not Path(folder).is_dir():
        raise ValueError("no such folder")
    return folder


def _as_recordings_folder(raw: object) -> str:
    folder = _as_str(raw)
    if not folder.strip():
        raise ValueError("empty")
    path = Path(os.path.expanduser(folder))
    if not path.is_absolute():
        raise ValueError("not an absolute path")
    if path.exists() and not path.is_dir():
        raise ValueError("exists and is not a folder")
    return str(path)  # "~/rec" as the user typed it, expanded: never a folder literally named "~"


def _as_profile(raw: object) -> str:
    path = _as_str(raw)
    if path and not Path(path).is_file():
        raise ValueError("no such file")
    return path


def _damage(path: Path, *, format_error: bool) -> str | None:
    """Say why the INI file at ``path`` is not a settings file (None when it is, or is missing or empty)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.strip():
        return None
    if format_error:
        return "not in INI format"
    text = data.decode("utf-8", errors="replace")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith((";", "#", "[")) and "=" not in line:
            return f"a line that is not a setting: {line[:60]!r}"
    return None


def _private_copy(path: Path) -> Path:
    """Copy ``path`` to a new ``<name>.bad`` (``.bad-2``...) beside it, mode 0600; returns the copy."""
    data = path.read_bytes()
    for n in range(1, 1000):
        copy = path.with_name(f"{path.name}.bad" + ("" if n == 1 else f"-{n}"))
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return copy
    raise FileExistsError(f"{path}.bad: too many copies")


class AppSettings(QObject):
    """Preferences: analysis (window/hop, smoothing, gate, minimum confidence), device, folders, voice profile.

    Parameters
    ----------
    store : QSettings
        Where values persist; tests pass a temporary INI file.

    Every setter validates, writes through to ``store`` and emits :attr:`changed`. Every
    stored value is validated when read: a value of the wrong type, out of range, or naming a
    file or folder that does not exist counts as absent (the default is used), and a warning
    naming the settings file, the key, the value and the reason goes to the ``"ser.app"``
    logger, once per key. The constructor reads every key, so the notes appear at start-up and
    a corrupted settings file never stops the app. The stored value is left as it is (a
    profile on a drive that is not mounted comes back when the drive does).
    """

    changed = Signal()

    def __init__(self, store: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.defaults = StreamSettings()  # window and hop follow the model once use_model_defaults() is called
        # the model's own threshold and its validation tradeoff, for the settings dialog (use_model_defaults)
        self.model_min_confidence: float | None = None
        self.confidence_tradeoff: ConfidenceTradeoff | None = None
        self._reported: set[str] = set()
        self._keep_damaged_file()
        self._make_private()
        self.check()

    def _ini_path(self) -> Path | None:
        name = self._store.fileName()
        return Path(name) if name and self._store.format() == QSettings.Format.IniFormat else None

    def _keep_damaged_file(self) -> None:
        """Say when the settings file is not a settings file, and keep a copy before it is rewritten.

        QSettings skips what it cannot parse and rewrites the whole file at the next change,
        so without this a damaged file would be replaced without a word.
        """
        path = self._ini_path()
        if path is None:
            if self._store.status() != QSettings.Status.NoError:
                log.warning("settings %s could not be read (%s); using the defaults", self._store.fileName(),
                            self._store.status().name)
            return
        reason = _damage(path, format_error=self._store.status() == QSettings.Status.FormatError)
        if reason is None:
            return
        try:
            copy = _private_copy(path)
            kept = f"a copy of it is kept as {copy}"
        except OSError as exc:
            kept = f"no copy of it could be kept ({exc.strerror or exc})"
        log.warning("settings file %s is damaged (%s): using the defaults; the file is replaced when a setting "
                    "changes; %s", path, reason, kept)

    def _make_private(self) -> None:
        """Create the settings file now, 0600 (a new folder 0700): QSettings keeps the mode when it rewrites it."""
        from ser_engine.live.recorder import make_private_folder

        path = self._ini_path()
        if path is None:
            return
        try:
            make_private_folder(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                mode = os.fstat(fd).st_mode & 0o777
                if mode & 0o077:  # a file written by an older version, world-readable
                    os.fchmod(fd, mode & 0o700)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("settings file %s cannot be made private (%s)", path, exc.strerror or exc)

    def check(self) -> list[str]:
        """Read and validate every stored value; returns the keys that were invalid (defaults used)."""
        _ = (self.stream_settings, self.min_confidence, self.input_device, self.last_folder, self.recordings_folder,
             self.voice_profile, self.files_use_profile, self.window_geometry, self.last_tab)
        return sorted(self._reported)

    # ------------------------------------------------------------------ helpers
    def _get(self, key: str, parse: Callable[[object], T], default: T) -> T:
        """Return the stored value of ``key`` parsed, or ``default`` (with a note in the log) when invalid."""
        if not self._store.contains(key):
            return default
        raw: Any = self._store.value(key)
        try:
            return parse(raw)
        except ValueError as exc:
            self._report(key, raw, str(exc), default)
            return default

    def _report(self, key: str, raw: object, reason: str, default: object) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        shown = repr(raw)
        if len(shown) > 300:
            shown = shown[:297] + "..."
        log.warning("settings %s: %s=%s is invalid (%s); using the default %r",
                    self._store.fileName(), key, shown, reason, default)

    def _float(self, key: str, default: float) -> float:
        return self._get(key, _as_float, default)

    def _str(self, key: str, default: str = "") -> str:
        return self._get(key, _as_str, default)

    def _set(self, key: str, value: object) -> None:
        self._store.setValue(key, value)
        self._store.sync()
        self._reported.discard(key)
        self.changed.emit()

    # ------------------------------------------------------------------ analysis
    def use_model_defaults(self, model: EmotionModel) -> None:
        """Default window and hop: the model's own (its FeatureConfig), as ``ser analyze`` and ``ser listen`` use.

        A window or hop the user chose (stored) is kept. The model's own uncertainty
        threshold (:attr:`model_min_confidence`, whatever minimum confidence the model was
        given) and its validation tradeoff (:attr:`confidence_tradeoff`) are kept too,
        for the settings dialog to show.
        """
        self.defaults = settings_for(model)
        self.model_min_confidence = model.default_min_confidence
        self.confidence_tradeoff = model.metadata.confidence_tradeoff

    @property
    def stream_settings(self) -> StreamSettings:
        """The live/file analysis settings; each invalid stored value falls back to its default.

        A value out of its range (e.g. ``smoothing=1.5``) falls back alone; stored values that
        are valid one by one but not together (a hop longer than the window) give the defaults.
        """
        d = self.defaults
        values: dict[str, float] = {}
        for name in ("window_s", "hop_s", "smoothing", "gate_sensitivity"):
            key = f"analysis/{name}"
            default = float(getattr(d, name))
            value = self._float(key, default)
            try:
                # alone against its own range (the hop against the longest window: the pair is checked below)
                _ = (StreamSettings(window_s=MAX_WINDOW_S, hop_s=value) if name == "hop_s"
                     else d.replace(**{name: value}))
            except ParameterError as exc:
                self._report(key, value, str(exc), default)
                value = default
            values[name] = value
        try:
            return StreamSettings(**values)
        except ParameterError as exc:
            self._report("analysis", values, str(exc), "the default analysis settings")
            return d

    def set_stream_settings(self, s: StreamSettings) -> None:
        """Store validated stream settings (a :class:`StreamSettings` is validated on construction).

        A window and hop equal to the defaults (the model's) are not stored, so they keep
        following the model.
        """
        for name in ("analysis", "analysis/window_s", "analysis/hop_s", "analysis/smoothing"):
            self._reported.discard(name)
        if (s.window_s, s.hop_s) == (self.defaults.window_s, self.defaults.hop_s):
            self._store.remove("analysis/window_s")
            self._store.remove("analysis/hop_s")
        else:
            self._store.setValue("analysis/window_s", float(s.window_s))
            self._store.setValue("analysis/hop_s", float(s.hop_s))
        self._store.setValue("analysis/smoothing", float(s.smoothing))
        self._set("analysis/gate_sensitivity", float(s.gate_sensitivity))

    @property
    def min_confidence(self) -> float | None:
        """The user's minimum confidence in [0, 1), below which a prediction is *uncertain*; None: the model's own.

        Applied with :meth:`EmotionModel.with_min_confidence
        <ser_engine.inference.model.EmotionModel.with_min_confidence>` (``ser --min-confidence``).
        """
        value: float | None = self._get("analysis/min_confidence", _as_min_confidence, None)
        return value

    @min_confidence.setter
    def min_confidence(self, value: float | None) -> None:
        key = "analysis/min_confidence"
        if value is None:  # the model's own: nothing stored, so it follows the model
            self._store.remove(key)
            self._set_removed(key)
            return
        try:
            checked = _as_min_confidence(value)
        except ValueError as exc:
            raise ParameterError(f"the minimum confidence must be at least 0 and less than 1, got {value!r} "
                                 f"({exc})") from None
        self._set(key, checked)

    def _set_removed(self, key: str) -> None:
        self._store.sync()
        self._reported.discard(key)
        self.changed.emit()

    # ------------------------------------------------------------------ devices and folders
    @property
    def input_device(self) -> str:
        """Name of the preferred input device ("" = the system default)."""
        return self._str("live/input_device")

    @input_device.setter
    def input_device(self, name: str) -> None:
        self._set("live/input_device", name)

    @property
    def last_folder(self) -> str:
        """Folder of the last opened file (file mode's dialogs start there)."""
        folder = self._get("files/last_folder", _as_folder, "")
        return folder or str(Path.home())

    @last_folder.setter
    def last_folder(self, folder: str) -> None:
        self._set("files/last_folder", folder)

    @property
    def recordings_folder(self) -> str:
        """Where live recordings (WAV + timeline CSV) are written."""
        return self._get("live/recordings_folder", _as_recordings_folder, str(Path.home() / "ser-recordings"))

    @recordings_folder.setter
    def recordings_folder(self, folder: str) -> None:
        self._set("live/recordings_folder", folder)

    # ------------------------------------------------------------------ voice calibration
    @property
    def voice_profile(self) -> str:
        """Path of the active voice-profile file ("" = no calibration, also when the file is gone)."""
        return self._get("calibration/profile", _as_profile, "")

    @voice_profile.setter
    def voice_profile(self, path: str) -> None:
        self._set("calibration/profile", str(path))

    @property
    def files_use_profile(self) -> bool:
        """Whether file analysis applies the active voice profile."""
        return self._get("calibration/files_use_profile", _as_bool, False)

    @files_use_profile.setter
    def files_use_profile(self, use: bool) -> None:
        self._set("calibration/files_use_profile", bool(use))

    # ------------------------------------------------------------------ window
    @property
    def window_geometry(self) -> bytes:
        """The main window's saved geometry (``QWidget.saveGeometry``), b"" when none is stored."""
        return self._get("window/geometry", _as_bytes, b"")

    @window_geometry.setter
    def window_geometry(self, data: bytes) -> None:
        self._store.setValue("window/geometry", QByteArray(bytes(data)))
        self._store.sync()
        self._reported.discard("window/geometry")

    @property
    def last_tab(self) -> int:
        """Index of the tab shown at start-up (0 live microphone, 1 files)."""
        return self._get("window/tab", _as_tab, 0)

    @last_tab.setter
    def last_tab(self, index: int) -> None:
        self._store.setValue("window/tab", int(index))
        self._store.sync()
        self._reported.discard("window/tab")
