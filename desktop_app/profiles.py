"""The app's voice profiles: the saved ones (``ProfileStore``), which one is active, the calibrated model.

One :class:`ProfileManager` is shared by the live view, the Files tab, the
calibration dialog and the "Manage voice profiles" dialog. The active choice is
stored in :class:`~desktop_app.settings.AppSettings` (``voice_profile``, the
profile file's path), never in a widget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from desktop_app.settings import AppSettings
from ser_engine.errors import ProfileError
from ser_engine.inference.model import EmotionModel
from ser_engine.inference.profile import ProfileStore, VoiceProfile

__all__ = ["ProfileEntry", "ProfileManager", "top_labels"]


@dataclass(frozen=True)
class ProfileEntry:
    """One profile file as listed to the user.

    Attributes
    ----------
    path : Path
    profile : VoiceProfile or None
        None when the file cannot be read.
    error : str or None
        Why the profile cannot be used (unreadable file, or made for another model).
    """

    path: Path
    profile: VoiceProfile | None
    error: str | None = None

    @property
    def usable(self) -> bool:
        """Whether the profile can be used with this model."""
        return self.profile is not None and self.error is None

    @property
    def kind(self) -> str:
        """``"ok"``, ``"broken"`` (the file cannot be read) or ``"other-model"``."""
        if self.profile is None:
            return "broken"
        return "ok" if self.error is None else "other-model"

    @property
    def name(self) -> str:
        """The profile's name (the file's name when it cannot be read)."""
        return self.profile.name if self.profile is not None else self.path.stem

    @property
    def status_text(self) -> str:
        """The profile's state in words, for the profiles dialog."""
        return {"ok": "ready", "broken": "unusable: cannot be read",
                "other-model": "unusable: made for another model"}[self.kind]


def top_labels(probabilities: dict[str, float], *, n: int = 3) -> list[tuple[str, float]]:
    """Return the ``n`` most probable labels, most probable first."""
    return sorted(probabilities.items(), key=lambda kv: -kv[1])[:n]


class ProfileManager(QObject):
    """Saved voice profiles and the active one, for one model.

    Parameters
    ----------
    settings : AppSettings
        Holds the active profile's path.
    model : EmotionModel
        The uncalibrated model; profiles made for another model are listed but refused.
    store : ProfileStore, optional
        Where profiles live (default: ``$XDG_DATA_HOME/ser/profiles``).

    Signals
    -------
    changed()
        The list of profiles or the active profile changed.
    """

    changed = Signal()

    def __init__(self, *, settings: AppSettings, model: EmotionModel, store: ProfileStore | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.base_model = model
        self.store = store if store is not None else ProfileStore()
        self.entries: list[ProfileEntry] = []
        self._models: dict[Path, EmotionModel] = {}
        self.refresh(emit=False)

    # ------------------------------------------------------------------ listing
    def refresh(self, *, emit: bool = True) -> list[ProfileEntry]:
        """Read the profile folder again (broken files are listed with their error, never raised)."""
        entries: list[ProfileEntry] = []
        models: dict[Path, EmotionModel] = {}
        try:
            listed = self.store.list()
        except OSError as exc:  # an unreadable folder: no profiles, said in the list
            listed = [(self.store_dir, ProfileError(f"{self.store_dir}: cannot list profiles ({exc})"))]
        for path, item in listed:
            if isinstance(item, VoiceProfile):
                try:
                    models[Path(path)] = self._models.get(Path(path)) or self.base_model.with_profile(item)
                    entries.append(ProfileEntry(Path(path), item, None))
                except ProfileError as exc:
                    entries.append(ProfileEntry(Path(path), item, str(exc)))
            else:
                entries.append(ProfileEntry(Path(path), None, str(item)))
        self.entries = entries
        self._models = models
        if emit:
            self.changed.emit()
        return entries

    @property
    def store_dir(self) -> Path:
        """The profile folder."""
        return Path(getattr(self.store, "directory", "") or "profiles")

    def entry(self, path: Path | str) -> ProfileEntry | None:
        """Return the entry of the profile file ``path`` (None: not in the folder)."""
        p = Path(path)
        return next((e for e in self.entries if e.path == p), None)

    # ------------------------------------------------------------------ active profile
    def active_entry(self) -> ProfileEntry | None:
        """Return the entry chosen in the settings (usable or not), None for "No calibration"."""
        chosen = self.settings.voice_profile
        if not chosen:
            return None
        found = self.entry(chosen)
        if found is None:
            return ProfileEntry(Path(chosen), None, f"{chosen}: the profile file is missing")
        return found

    def active_profile(self) -> VoiceProfile | None:
        """Return the active profile when it can be used with this model, else None."""
        e = self.active_entry()
        return e.profile if e is not None and e.usable else None

    def active_problem(self) -> str | None:
        """Return why the chosen profile cannot be used (None when it can, or none is chosen)."""
        e = self.active_entry()
        return None if e is None or e.usable else e.error

    def set_active(self, path: Path | str | None) -> None:
        """Choose the active profile (None = no calibration).

        Raises
        ------
        ProfileError
            The file is not a usable profile for this model (the message says why).
        """
        if path is None or str(path) == "":
            if self.settings.voice_profile:
                self.settings.voice_profile = ""
                self.changed.emit()
            return
        e = self.entry(path)
        if e is None:
            raise ProfileError(f"{path}: no such voice profile")
        if not e.usable:
            raise ProfileError(e.error or f"{path}: unusable voice profile")
        if self.settings.voice_profile != str(e.path):
            self.settings.voice_profile = str(e.path)
            self.changed.emit()

    def set_min_confidence(self, value: float | None) -> None:
        """Give the plain model and every profiled model the user's minimum confidence (None: the model's own).

        :meth:`model_for` then returns new models, and :attr:`changed` is emitted so that
        the live view switches to them (as when the active profile changes); nothing
        happens when the value is already the one in use.

        Raises
        ------
        ParameterError
            ``value`` is not in [0, 1) (:meth:`EmotionModel.with_min_confidence
            <ser_engine.inference.model.EmotionModel.with_min_confidence>`).
        """
        if value == self.base_model.min_confidence:
            return
        self.base_model = self.base_model.with_min_confidence(value)
        self._models = {path: m.with_min_confidence(value) for path, m in self._models.items()}
        self.changed.emit()

    def model_for(self, *, use_profile: bool = True) -> EmotionModel:
        """Return the calibrated model for the active profile, or the plain model."""
        if use_profile:
            e = self.active_entry()
            if e is not None and e.usable and e.path in self._models:
                return self._models[e.path]
        return self.base_model

    # ------------------------------------------------------------------ editing
    def save(self, profile: VoiceProfile, *, activate: bool = True) -> Path:
        """Save a new profile (unique file name) and make it the active one."""
        path = Path(self.store.save(profile))
        self.refresh(emit=False)
        if activate and (e := self.entry(path)) is not None and e.usable:
            self.settings.voice_profile = str(path)
        self.changed.emit()
        return path

    def rename(self, path: Path, new_name: str) -> Path:
        """Rename a profile; the active choice follows it to its new file."""
        name = new_name.strip()
        if not name:
            raise ProfileError(f"{path}: a profile needs a name")
        was_active = self.settings.voice_profile == str(path)
        new_path = Path(self.store.rename(Path(path), name))
        if was_active:
            self.settings.voice_profile = str(new_path)
        self._models.pop(Path(path), None)
        self.refresh()
        return new_path

    def delete(self, path: Path) -> None:
        """Delete a profile file; when it was active, calibration is switched off."""
        self.store.delete(Path(path))
        if self.settings.voice_profile == str(path):
            self.settings.voice_profile = ""
        self.refresh()
