"""User preferences held in a model object backed by :class:`QSettings` (not in widgets)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal

from ser_engine.errors import ParameterError
from ser_engine.stream import StreamSettings

__all__ = ["AppSettings", "default_settings"]

ORGANISATION = "ser"
APPLICATION = "ser-app"


def default_settings() -> QSettings:
    """The user's settings store (INI file in the platform's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


class AppSettings(QObject):
    """Preferences: analysis window/hop, smoothing, gate sensitivity, device, folders, voice profile.

    Parameters
    ----------
    store : QSettings
        Where values persist; tests pass a temporary INI file.

    Every setter validates, writes through to ``store`` and emits :attr:`changed`.
    """

    changed = Signal()

    DEFAULTS = StreamSettings()

    def __init__(self, store: QSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store

    # ------------------------------------------------------------------ helpers
    def _float(self, key: str, default: float) -> float:
        value = self._store.value(key, default)
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return default

    def _str(self, key: str, default: str = "") -> str:
        value = self._store.value(key, default)
        return default if value is None else str(value)

    def _set(self, key: str, value: object) -> None:
        self._store.setValue(key, value)
        self._store.sync()
        self.changed.emit()

    # ------------------------------------------------------------------ analysis
    @property
    def stream_settings(self) -> StreamSettings:
        """The live/file analysis settings; falls back to the defaults if the stored ones are invalid."""
        d = self.DEFAULTS
        try:
            return StreamSettings(
                window_s=self._float("analysis/window_s", d.window_s),
                hop_s=self._float("analysis/hop_s", d.hop_s),
                smoothing=self._float("analysis/smoothing", d.smoothing),
                gate_sensitivity=self._float("analysis/gate_sensitivity", d.gate_sensitivity),
            )
        except ParameterError:
            return d

    def set_stream_settings(self, s: StreamSettings) -> None:
        """Store validated stream settings (a :class:`StreamSettings` is validated on construction)."""
        self._store.setValue("analysis/window_s", float(s.window_s))
        self._store.setValue("analysis/hop_s", float(s.hop_s))
        self._store.setValue("analysis/smoothing", float(s.smoothing))
        self._set("analysis/gate_sensitivity", float(s.gate_sensitivity))

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
        folder = self._str("files/last_folder")
        return folder if folder and Path(folder).is_dir() else str(Path.home())

    @last_folder.setter
    def last_folder(self, folder: str) -> None:
        self._set("files/last_folder", folder)

    @property
    def recordings_folder(self) -> str:
        """Where live recordings (WAV + timeline CSV) are written."""
        return self._str("live/recordings_folder", str(Path.home() / "ser-recordings"))

    @recordings_folder.setter
    def recordings_folder(self, folder: str) -> None:
        self._set("live/recordings_folder", folder)

    # ------------------------------------------------------------------ voice calibration
    @property
    def voice_profile(self) -> str:
        """Path of the active voice-profile file ("" = no calibration)."""
        return self._str("calibration/profile")

    @voice_profile.setter
    def voice_profile(self, path: str) -> None:
        self._set("calibration/profile", str(path))

    @property
    def files_use_profile(self) -> bool:
        """Whether file analysis applies the active voice profile."""
        value = self._store.value("calibration/files_use_profile", False)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)

    @files_use_profile.setter
    def files_use_profile(self, use: bool) -> None:
        self._set("calibration/files_use_profile", bool(use))

    # ------------------------------------------------------------------ window
    @property
    def window_geometry(self) -> bytes:
        value = self._store.value("window/geometry", b"")
        return bytes(value) if value else b""  # type: ignore[call-overload]

    @window_geometry.setter
    def window_geometry(self, data: bytes) -> None:
        self._store.setValue("window/geometry", data)
        self._store.sync()

    @property
    def last_tab(self) -> int:
        try:
            return int(str(self._store.value("window/tab", 0)))
        except (TypeError, ValueError):
            return 0

    @last_tab.setter
    def last_tab(self, index: int) -> None:
        self._store.setValue("window/tab", int(index))
        self._store.sync()
