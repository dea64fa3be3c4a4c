"""Live mode: device picker, level meter, waveform, current emotion, bars, 60 s timeline, recording."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsView,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop_app.affect import AffectGauge, affect_axis, affect_title_html
from desktop_app.app_log import bug_message
from desktop_app.live_controller import LiveController
from desktop_app.palette import emotion_color, label_text
from desktop_app.profiles import ProfileManager
from desktop_app.settings import AppSettings
from desktop_app.widgets import (
    ColorKey,
    EmotionDisplay,
    FitLabel,
    FixedViewCurve,
    LevelMeter,
    ProbabilityBars,
    ScrollingEnvelope,
    cache_axes,
    style_plot,
)
from ser_engine.dsp.gate import level_dbfs
from ser_engine.errors import ProfileError, SerError
from ser_engine.inference.model import EmotionModel
from ser_engine.live.session import LiveStats
from ser_engine.live.stream import Prediction
from ser_engine.logs import get_logger

__all__ = ["NO_MICROPHONE_TEXT", "DeviceInfo", "LiveView", "device_text", "list_devices", "status_separator"]

log = get_logger("app")

WAVEFORM_S = 8.0
TIMELINE_S = 60.0
REPAINT_MS = 33  # ~30 fps
WAVEFORM_COLUMNS = 600  # min/max pairs across the plot (about 2 px each at full-HD width)
STATUS_EVERY = 8  # status-bar figures at ~4 Hz
LEVEL_S = 0.05
RECORDING_BANNER = "Recording failed:"  # banner prefix of a failed recording (listening goes on)
CANNOT_RECORD_BANNER = "Cannot record to"  # banner prefix of a recording that could not start
SILENCE_BANNER = "No sound from the input:"  # banner prefix while the input delivers digital silence


class DeviceInfo:
    """An input device as shown in the picker."""

    def __init__(self, index: int, name: str, is_default: bool, rate: float) -> None:
        self.index, self.name, self.is_default, self.rate = index, name, is_default, rate

    def __repr__(self) -> str:
        return f"DeviceInfo({self.index}, {self.name!r}, default={self.is_default})"


NO_MICROPHONE_TEXT = "No microphone found — connect one and press Refresh"


def device_text(device: DeviceInfo, *, opened_rate: float | None = None) -> str:
    """Return the picker's text for a device: its default rate, or the rate its stream opened at."""
    rate = (f"open at {opened_rate / 1000:g} kHz" if opened_rate
            else f"default rate {device.rate / 1000:g} kHz")
    return f"{device.name}  ({rate})" + ("  — system default" if device.is_default else "")


def status_separator() -> QLabel:
    """Make a " · " between status-bar fields (a QLabel, so it hides and shows with its field)."""
    sep = QLabel("·")
    sep.setObjectName("status_separator")
    sep.setStyleSheet("color:#808080; padding: 0 4px;")
    return sep


def list_devices(*, rescan: bool = False) -> tuple[list[DeviceInfo], str | None]:
    """Input devices from the engine, and an error message when none can be listed.

    ``rescan`` first makes PortAudio look for devices again
    (:func:`ser_engine.live.inputs.rescan_devices`); only while no stream is open.
    """
    from ser_engine.errors import DeviceError
    from ser_engine.live.inputs import list_input_devices, rescan_devices

    try:
        if rescan:
            rescan_devices()
        devices = list_input_devices()
    except DeviceError as exc:
        return [], f"cannot list audio input devices: {exc}"
    out = [DeviceInfo(int(d.index), str(d.name), bool(d.is_default), float(d.default_samplerate)) for d in devices]
    return out, None


class LiveView(QWidget):
    """The live microphone monitor.

    Signals
    -------
    message(str)
        A short status-bar message.
    waveform_painted(int)
        The 16 kHz stream position shown by the newest waveform repaint (benchmarks).
    """

    message = Signal(str)
    waveform_painted = Signal(int)

    def __init__(self, *, settings: AppSettings, model: EmotionModel | None,
                 controller: LiveController | None = None,
                 device_lister: Callable[[], tuple[list[DeviceInfo], str | None]] = list_devices,
                 profiles: ProfileManager | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.model = model
        if model is not None:
            settings.use_model_defaults(model)  # window and hop: the model's, as in `ser`
        self.controller = controller if controller is not None or model is None else LiveController(model, parent=self)
        if profiles is None and model is not None:
            profiles = ProfileManager(settings=settings, model=model, parent=self)
        self.profiles = profiles
        self.calibration_dialog: Any = None
        self.profiles_dialog: Any = None
        self.profile_pending = False  # a profile change waits for the next Start (a recording was running)
        self._device_lister = device_lister
        self.devices: list[DeviceInfo] = []
        labels = model.labels if model is not None else ()
        self.labels = tuple(labels)
        self.affect_names = tuple(model.affect_names) if model is not None else ()  # () hides the affect displays
        self.rate = model.feature_config.sample_rate if model is not None else 16000
        self.predictions_received = 0
        self.speech_predictions = 0
        self.silence_predictions = 0
        self.last_prediction: Prediction | None = None
        self.last_stats: LiveStats | None = None
        self._history: deque[tuple[float, np.ndarray]] = deque()
        self._affect_history: deque[tuple[float, np.ndarray]] = deque()  # (end_s, percent per affect name)
        self._timeline_dirty = False
        self._last_tick = time.monotonic()
        self._ticks = 0
        self._envelope: ScrollingEnvelope | None = None
        self._build()
        self.refresh_devices()
        if self.profiles is not None:
            self.profiles.changed.connect(self._profiles_changed)
        self._profiles_changed()
        if self.controller is not None:
            self.controller.prediction.connect(self.on_prediction)
            self.controller.failed.connect(self.on_failed)
            self.controller.running_changed.connect(self._on_running_changed)
            self.controller.recording_changed.connect(self._on_recording_changed)
            self.controller.recording_saved.connect(self._on_recording_saved)
            self.controller.recording_failed.connect(self.on_recording_failed)
            self.controller.input_silence.connect(self.on_input_silence)
        self.timer = QTimer(self)
        self.timer.setInterval(REPAINT_MS)
        self.timer.timeout.connect(self.repaint_tick)
        if model is None:
            self.set_unavailable("No model loaded", "live analysis is disabled until a model is available")

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        # The page from top to bottom; the status-bar labels are made here and placed by the main window.
        root = QVBoxLayout(self)
        self._build_device_bar(root=root)
        self._build_profile_bar(root=root)
        self._build_banner(root=root)
        self._build_emotion_now(root=root)
        self._build_level_meter(root=root)
        self._build_waveform(root=root)
        self._build_timeline(root=root)
        self._build_affect_timeline(root=root)
        self._build_status_labels()

    def _build_device_bar(self, *, root: QVBoxLayout) -> None:
        """Add the input-device picker and the Refresh, Start and Record buttons."""
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Input device:"))
        self.device_combo = QComboBox()
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.device_combo.setMinimumWidth(260)
        self.device_combo.currentIndexChanged.connect(self._device_chosen)
        bar.addWidget(self.device_combo, 1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for input devices again")
        self.refresh_button.clicked.connect(lambda: self.refresh_devices(rescan=True))
        bar.addWidget(self.refresh_button)
        self.start_button = QPushButton("Start")
        self.start_button.setCheckable(False)
        self.start_button.setMinimumWidth(90)
        self.start_button.clicked.connect(self.toggle)
        bar.addWidget(self.start_button)
        self.record_button = QPushButton("Record")
        self.record_button.setToolTip("Save the audio (WAV) and the emotion timeline (CSV)")
        self.record_button.setEnabled(False)
        self.record_button.clicked.connect(self.toggle_recording)
        bar.addWidget(self.record_button)
        root.addLayout(bar)

    def _build_profile_bar(self, *, root: QVBoxLayout) -> None:
        """Add the voice-profile picker, its Calibrate and Manage buttons and the note under them."""
        voice = QHBoxLayout()
        voice.addWidget(QLabel("Voice profile:"))
        self.profile_combo = QComboBox()
        self.profile_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.profile_combo.setMinimumWidth(260)
        self.profile_combo.setToolTip("A voice profile adapts the model to your voice, room and microphone")
        self.profile_combo.currentIndexChanged.connect(self._profile_chosen)
        voice.addWidget(self.profile_combo, 1)
        self.calibrate_button = QPushButton("Calibrate to my voice…")
        self.calibrate_button.setToolTip("Read a short text aloud for 15 s so the model learns your neutral voice")
        self.calibrate_button.clicked.connect(self.open_calibration)
        voice.addWidget(self.calibrate_button)
        self.manage_button = QPushButton("Manage…")
        self.manage_button.setToolTip("Rename or delete voice profiles")
        self.manage_button.clicked.connect(self.open_profiles)
        voice.addWidget(self.manage_button)
        root.addLayout(voice)
        self.profile_note = QLabel()
        self.profile_note.setWordWrap(True)
        self.profile_note.setStyleSheet("color:#E69F00;")
        self.profile_note.setVisible(False)
        root.addWidget(self.profile_note)

    def _build_banner(self, *, root: QVBoxLayout) -> None:
        """Add the (hidden) banner that shows a failure or a missing model."""
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#5a1e00; color:white; padding:6px; font-size:13pt;")
        self.banner.setVisible(False)
        root.addWidget(self.banner)

    def _build_emotion_now(self, *, root: QVBoxLayout) -> None:
        """Add the current emotion (and the affect gauge under it) beside the current probability bars."""
        grid = QGridLayout()
        self.emotion = EmotionDisplay()
        self.emotion.setMinimumWidth(380)
        now = QVBoxLayout()
        now.addWidget(self.emotion, 1)
        self.affect_gauge = AffectGauge(self.affect_names)  # hidden for a model without affect
        now.addWidget(self.affect_gauge)
        grid.addLayout(now, 0, 0)
        self.bars = ProbabilityBars(self.labels, title="Probabilities now")
        grid.addWidget(self.bars, 0, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        root.addLayout(grid, 3)

    def _build_level_meter(self, *, root: QVBoxLayout) -> None:
        """Add the input level meter and, beside it, where the current or last recording is."""
        meter_row = QHBoxLayout()
        meter_row.addWidget(QLabel("Level:"))
        self.meter = LevelMeter()
        self.meter.setMinimumWidth(300)  # stays readable when the recording's path shares the row
        meter_row.addWidget(self.meter, 1)
        self._build_recording_row(meter_row)
        root.addLayout(meter_row)

    def _build_recording_row(self, row: QHBoxLayout) -> None:
        """Add the recording's path (selectable, elided in the middle) with Open folder and Copy path.

        Hidden until the first recording; from then on it stays, naming the file being
        recorded or the last one saved, so the path can be read (and the folder opened)
        long after the status-bar message is gone. It shares the level meter's row so
        the page keeps its height in the default window.
        """
        self.recording_file: Path | None = None  # the file the row names
        self.recording_label = FitLabel(elide=Qt.TextElideMode.ElideMiddle)
        self.recording_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.recording_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.setToolTip("Open the folder holding the recording (its WAV and CSV files)")
        self.open_folder_button.clicked.connect(self.open_recording_folder)
        self.copy_path_button = QPushButton("Copy path")
        self.copy_path_button.setToolTip("Copy the recording's full path to the clipboard")
        self.copy_path_button.clicked.connect(self.copy_recording_path)
        row.addWidget(self.recording_label, 1)
        row.addWidget(self.open_folder_button)
        row.addWidget(self.copy_path_button)
        for w in (self.recording_label, self.open_folder_button, self.copy_path_button):
            w.setVisible(False)

    def _build_waveform(self, *, root: QVBoxLayout) -> None:
        """Add the scrolling waveform plot, set up to repaint as little as it can at 30 fps."""
        self.wave_plot = pg.PlotWidget()
        wp = self.wave_plot.getPlotItem()
        style_plot(wp, left="amplitude", left_units="FS", bottom="time", bottom_units="s")
        wp.setTitle(f"Waveform, last {WAVEFORM_S:g} s", size="12pt")
        wp.setYRange(-1, 1, padding=0)
        wp.setXRange(-WAVEFORM_S, 0, padding=0)
        wp.setMouseEnabled(x=False, y=False)
        # No grid here: grid lines belong to the axes, whose bounds then cover the plot, so every
        # 30 fps waveform update would repaint both axes too (about half the GUI thread's time).
        wp.showGrid(x=False, y=False)
        cache_axes(wp)
        self.wave_plot.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.BoundingRectViewportUpdate)
        self.wave_plot.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.wave_plot.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        # a bare curve item (lighter than PlotDataItem); the data are always finite
        self.wave_curve = FixedViewCurve(QRectF(-WAVEFORM_S, -1, WAVEFORM_S, 2), pen=pg.mkPen("#56B4E9", width=1),
                                         skipFiniteCheck=True)
        wp.addItem(self.wave_curve)
        self.wave_plot.setMinimumHeight(140)
        root.addWidget(self.wave_plot, 2)

    def _build_timeline(self, *, root: QVBoxLayout) -> None:
        """Add the emotion-probability timeline and its colour key."""
        self.timeline_plot = pg.PlotWidget()
        tp = self.timeline_plot.getPlotItem()
        style_plot(tp, left="probability", left_units="%", bottom="time", bottom_units="s")
        tp.setTitle(f"Emotion probabilities, last {TIMELINE_S:g} s (gaps = no speech)", size="12pt")
        tp.setYRange(0, 100, padding=0.02)
        tp.setXRange(-TIMELINE_S, 0, padding=0)
        tp.setMouseEnabled(x=False, y=False)
        cache_axes(tp)  # with the grid, the axes cover the plot: every new prediction would repaint them
        self.timeline_curves = {
            lab: tp.plot(pen=pg.mkPen(emotion_color(lab), width=2.5), name=label_text(lab), connect="finite")
            for lab in self.labels
        }
        self.timeline_plot.setMinimumHeight(170)
        root.addWidget(self.timeline_plot, 3)
        root.addWidget(ColorKey(self.labels))

    def _build_affect_timeline(self, *, root: QVBoxLayout) -> None:
        """Add the arousal/valence timeline under the emotions' (x-linked), for a model with affect only."""
        self.affect_plot = pg.PlotWidget()
        ap = self.affect_plot.getPlotItem()
        style_plot(ap, left="score", left_units="%", bottom="time", bottom_units="s")
        ap.setTitle(affect_title_html(self.affect_names, what=f", last {TIMELINE_S:g} s"), size="12pt")
        ap.setYRange(0, 100, padding=0.02)
        ap.getAxis("left").setTicks([[(v, f"{v}") for v in (0, 50, 100)], [(v, "") for v in (25, 75)]])
        ap.setXLink(self.timeline_plot.getPlotItem())
        ap.setMouseEnabled(x=False, y=False)
        cache_axes(ap)
        ap.addItem(pg.InfiniteLine(pos=50, angle=0, pen=pg.mkPen("#808080", width=1, style=Qt.PenStyle.DashLine)))
        self.affect_curves = {
            name: ap.plot(pen=pg.mkPen(affect_axis(name, index=i).color, width=2.5), connect="finite")
            for i, name in enumerate(self.affect_names)
        }
        self.affect_plot.setMinimumHeight(100)
        root.addWidget(self.affect_plot, 2)
        self.affect_plot.setVisible(bool(self.affect_names))
        if self.affect_names:  # room for it: the page still fits the default 1280x860 window
            self.timeline_plot.setMinimumHeight(130)

    def _build_status_labels(self) -> None:
        """Make the status-bar labels (the main window places them), each followed by a separator."""
        self.status_compute = QLabel("inference: — ms/step")
        self.status_delay = QLabel("delay: — ms")
        self.status_overruns = QLabel("overruns: 0")
        self.status_rate = QLabel("")
        self.status_rate.setToolTip("The rate the input device runs at, and the model's rate it is resampled to")
        # a separator after each field, so the fields never run together (nor into the window's own)
        self.status_separators = [status_separator() for _ in range(4)]
        for w in (self.status_compute, self.status_delay, self.status_overruns, self.status_rate):
            w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    # ------------------------------------------------------------------ voice profiles
    def _profiles_changed(self) -> None:
        """Rebuild the profile picker and give the live session the (un)calibrated model."""
        combo = self.profile_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("No calibration", "")
        prof = self.profiles
        if prof is None:
            combo.setEnabled(False)
            for b in (self.calibrate_button, self.manage_button):
                b.setEnabled(False)
            combo.blockSignals(False)
            return
        model = combo.model()
        active = self.settings.voice_profile
        chosen = 0
        for e in prof.entries:
            text = e.name if e.usable else f"{e.name} — {e.status_text}"
            combo.addItem(text, str(e.path))
            i = combo.count() - 1
            tip = e.error if e.error else (f"{e.profile.speech_s:.0f} s of speech; {e.path}" if e.profile else "")
            combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
            if not e.usable and isinstance(model, QStandardItemModel):
                item = model.item(i)
                if item is not None:
                    item.setEnabled(False)
            if e.usable and str(e.path) == active:
                chosen = i
        combo.setCurrentIndex(chosen)
        combo.blockSignals(False)
        problem = prof.active_problem()
        notes = []
        if problem:
            notes.append(f"The chosen voice profile cannot be used ({problem}); live analysis runs without "
                         "calibration. Pick another profile or calibrate again.")
        self._apply_profile(notes)
        self.profile_note.setText("\n".join(notes))
        self.profile_note.setVisible(bool(notes))
        self._update_buttons()

    def active_profile_name(self) -> str | None:
        """Return the active voice profile's name (None: no calibration)."""
        p = self.profiles.active_profile() if self.profiles is not None else None
        return None if p is None else p.name

    def _apply_profile(self, notes: list[str]) -> None:
        if self.profiles is None or self.controller is None:
            return
        model = self.profiles.model_for()
        if self.controller.model is model:
            if not self.running:
                self.profile_pending = False
            elif self.profile_pending:
                notes.append("The voice profile change takes effect when you press Start again.")
            return
        self.controller.model = model
        name = self.active_profile_name()
        what = f"voice profile “{name}”" if name else "no calibration"
        if not self.running:
            self.profile_pending = False
            return
        if self.controller.recording_path is not None:  # never cut a recording short
            self.profile_pending = True
            notes.append(f"Switched to {what}: it takes effect when you press Start again "
                         "(a recording is in progress).")
            return
        self.controller.stop()  # the session holds its model: restart it with the new one
        if self.start():
            self.message.emit(f"Listening with {what}")

    @Slot(int)
    def _profile_chosen(self, index: int) -> None:
        if self.profiles is None or index < 0:
            return
        path = self.profile_combo.itemData(index)
        try:
            self.profiles.set_active(path or None)
        except ProfileError as exc:  # an unusable file (its item is disabled, but be safe)
            self.profile_note.setText(str(exc))
            self.profile_note.setVisible(True)
            self._profiles_changed()

    @Slot()
    def open_calibration(self) -> Any:
        """Open the guided "Calibrate to my voice" dialog.

        Listening pauses while the dialog holds the microphone and resumes when it closes
        (with the new profile if one was saved); if it was stopped, it stays stopped.
        """
        if self.profiles is None or self.model is None:
            return None
        from desktop_app.calibration_dialog import CalibrationDialog

        resume = self.running
        if resume:
            self.stop()
            self.message.emit("Listening paused for the calibration")
        device = self.current_device()
        dlg = CalibrationDialog(model=self.model, profiles=self.profiles,
                                device=None if device is None else device.index,
                                device_name=device.name if device is not None else "the default input",
                                gate_sensitivity=self.settings.stream_settings.gate_sensitivity, parent=self)
        dlg.saved.connect(lambda path: self.message.emit(f"Voice profile saved: {path}"))
        if resume:
            dlg.closed.connect(lambda _saved: self.start())
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.calibration_dialog = dlg
        dlg.open()
        return dlg

    @Slot()
    def open_profiles(self) -> Any:
        """Open the "Manage voice profiles" dialog."""
        if self.profiles is None:
            return None
        from desktop_app.profiles_dialog import ProfilesDialog

        self.profiles.refresh()
        dlg = ProfilesDialog(self.profiles, parent=self)
        dlg.calibrate_requested.connect(self.open_calibration)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.profiles_dialog = dlg
        dlg.open()
        return dlg

    def status_widgets(self) -> list[QLabel]:
        """Return the status-bar fields, each followed by a separator (see :func:`status_separator`)."""
        fields = [self.status_compute, self.status_delay, self.status_overruns, self.status_rate]
        return [w for pair in zip(fields, self.status_separators, strict=True) for w in pair]

    # ------------------------------------------------------------------ devices
    def refresh_devices(self, *, rescan: bool = False) -> None:
        """Re-list input devices; keep the user's choice, else preselect the default.

        ``rescan`` (the Refresh button) makes PortAudio look for devices again,
        so a microphone plugged in (or a sound server restarted) is found.
        """
        if rescan and not self.running and self._device_lister is list_devices:
            devices, error = list_devices(rescan=True)
        else:
            devices, error = self._device_lister()
        self.devices = devices
        wanted = self.settings.input_device
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        chosen = -1
        for i, d in enumerate(devices):
            self.device_combo.addItem(device_text(d), d.index)
            if wanted and d.name == wanted:
                chosen = i
        if chosen < 0:
            chosen = next((i for i, d in enumerate(devices) if d.is_default), 0 if devices else -1)
        self.device_combo.setCurrentIndex(chosen)
        self.device_combo.blockSignals(False)
        if not devices:
            self.device_combo.addItem("no input device found")
            self.device_combo.setEnabled(False)
            text = "No audio input device found. Connect a microphone and press Refresh; file mode works without one."
            if error:
                text += f" ({error})"
            self.show_banner(text)
            if self._needs_device() and not self.running:  # Start is disabled: never say "press Start"
                self.emotion.show_message("No microphone", NO_MICROPHONE_TEXT, state="no_device")
        else:
            self.device_combo.setEnabled(True)
            if self.banner.text().startswith("No audio input device"):
                self.hide_banner()
            if self.emotion.state == "no_device":
                self.emotion.show_message("Stopped", "Press Start to listen to the microphone")
        self._show_device_rate()
        self._update_buttons()

    def _show_device_rate(self, opened_rate: float | None = None) -> None:
        """Show the chosen device's rate, the same in the picker and the status bar.

        Before listening that is the device's default rate (what the system reports); once
        listening, ``opened_rate``: the rate the input stream actually opened at.
        """
        i = self.device_combo.currentIndex()
        d = self.devices[i] if 0 <= i < len(self.devices) else None
        if d is None:
            self.status_rate.setText("device: none" if self._needs_device() else "")
            return
        text = device_text(d, opened_rate=opened_rate)
        if self.device_combo.itemText(i) != text:
            self.device_combo.setItemText(i, text)
        if opened_rate:
            self.status_rate.setText(f"device {opened_rate / 1000:g} kHz → model {self.rate / 1000:g} kHz")
        else:
            self.status_rate.setText(f"device default {d.rate / 1000:g} kHz")

    def _device_chosen(self, index: int) -> None:
        if 0 <= index < len(self.devices):
            d = self.devices[index]
            self.settings.input_device = "" if d.is_default else d.name
            for i, other in enumerate(self.devices):  # only the open device shows an opened rate
                self.device_combo.setItemText(i, device_text(other))
            self._show_device_rate()

    def current_device(self) -> DeviceInfo | None:
        """Return the device chosen in the picker (None: no device)."""
        i = self.device_combo.currentIndex()
        return self.devices[i] if 0 <= i < len(self.devices) else None

    # ------------------------------------------------------------------ start / stop
    @property
    def running(self) -> bool:
        """Whether a live session is running."""
        return self.controller is not None and self.controller.running

    @Slot()
    def toggle(self) -> None:
        """Start or stop listening (the Start/Stop button)."""
        if self.running:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        """Open the chosen device and start listening; shows the reason when it cannot."""
        if self.controller is None:
            return False
        device = self.current_device()
        if device is None and self.controller.needs_device:
            self.show_banner("No audio input device found. Connect a microphone and press Refresh.")
            return False
        self._reset_display()
        name = device.name if device is not None else "the default input"
        try:
            self.controller.start(device=None if device is None else device.index,
                                  settings=self.settings.stream_settings)
        except SerError as exc:  # DeviceError (ParameterError for bad settings): the engine's words
            self.show_banner(f"Cannot open {name}: {exc}")
            self.emotion.show_message("Stopped", "the input device could not be opened")
            return False
        except Exception as exc:  # a bug: said in the window, the traceback in the log
            log.exception("starting the live session failed")
            self.show_banner(f"Cannot listen to {name}: {bug_message(exc)}")
            self.emotion.show_message("Stopped", "an internal error; see the message above", state="error")
            return False
        self.hide_banner()
        return True

    def stop(self) -> None:
        """Stop listening (a recording is closed and kept)."""
        if self.controller is not None:
            self.controller.stop()
        if self.banner.text().startswith(SILENCE_BANNER):  # about the session that has ended
            self.hide_banner()

    def _reset_display(self) -> None:
        self._envelope = None  # a new session has a new ring
        self._history.clear()
        self._affect_history.clear()
        self._timeline_dirty = True
        self.predictions_received = self.speech_predictions = self.silence_predictions = 0
        self.last_prediction = None
        self.bars.set_probabilities(None)
        self.affect_gauge.set_affect(None)
        self.meter.reset()
        self.emotion.show_message("Listening…", "waiting for the first analysis window", state="listening")

    @Slot(bool)
    def _on_running_changed(self, running: bool) -> None:
        if running:
            self.timer.start()
            self.message.emit("Listening to the microphone")
        else:
            self.timer.stop()
            self.repaint_tick()
            self._show_device_rate()  # back to the device's default rate
            if self.controller is not None and self.controller.last_error is None:
                self.emotion.show_message("Stopped", "press Start to listen again")
        self._update_buttons()

    def _update_buttons(self) -> None:
        ok = self.controller is not None
        running = self.running
        self.start_button.setText("Stop" if running else "Start")
        self.start_button.setEnabled(ok and (running or bool(self.devices) or not self._needs_device()))
        self.device_combo.setEnabled(bool(self.devices) and not running)
        self.refresh_button.setEnabled(not running)
        have = self.profiles is not None and self.model is not None
        self.calibrate_button.setEnabled(have)
        self.manage_button.setEnabled(have)
        self.profile_combo.setEnabled(have)
        self.record_button.setEnabled(ok and running)
        recording = self.controller is not None and self.controller.recording_path is not None
        self.record_button.setText("Stop recording" if recording else "Record")

    def _needs_device(self) -> bool:
        return self.controller is not None and self.controller.needs_device

    @Slot(str)
    def on_failed(self, message: str) -> None:
        """Say that the session ended on an error (device lost, or a bug) and stay usable."""
        if self.controller is not None and self.controller.last_error_internal:
            self.show_banner(f"Live analysis stopped: {message}\nPress Start to listen again.")
            self.emotion.show_message("Stopped", "an internal error; see the message above", state="error")
            self.message.emit("Live analysis stopped by an internal error")
        else:
            self.show_banner(f"The live input stopped: {message}\nPick a device (Refresh) and press Start again.")
            self.emotion.show_message("Input lost", "the input device stopped; see the message above", state="error")
            self.message.emit("Live input stopped: " + message.splitlines()[0])
        self._update_buttons()

    # ------------------------------------------------------------------ recording
    @Slot()
    def toggle_recording(self) -> None:
        """Start a recording into the recordings folder, or stop the one running (the Record button)."""
        if self.controller is None or not self.running:
            return
        if self.controller.recording_path is not None:
            # saved: recording_saved names the file; failed: recording_failed says why
            self.controller.stop_recording()
            return
        folder = Path(self.settings.recordings_folder)
        stem = self.recording_stem()
        try:
            self.controller.start_new_recording(folder, stem)
        except (SerError, OSError) as exc:  # RecordingError, or the folder cannot be made
            self.show_banner(f"{CANNOT_RECORD_BANNER} {folder / stem}.wav: {exc}")
            return
        # a banner about an earlier recording (failed, or could not start) is stale now that one runs
        if self.banner.text().startswith((RECORDING_BANNER, CANNOT_RECORD_BANNER)):
            self.hide_banner()

    def recording_stem(self) -> str:
        """Name a new recording's files (without suffix): ``ser-YYYYmmdd-HHMMSS`` of now.

        Two recordings started in the same second share it; the controller then adds
        ``-2``, ``-3``... (:meth:`LiveController.start_new_recording`).
        """
        return datetime.now().strftime("ser-%Y%m%d-%H%M%S")

    @Slot(str)
    def on_recording_failed(self, message: str) -> None:
        """Say that a recording stopped (disk full...) and where the files are; listening goes on."""
        self.show_banner(f"{RECORDING_BANNER} {message}\nListening goes on; press Record to try again.")
        self.message.emit("Recording stopped: " + message.splitlines()[0])
        self._update_buttons()

    @Slot(str)
    def on_input_silence(self, message: str) -> None:
        """Say that the input delivers digital silence (its source was removed or muted); "" when sound is back.

        The notice does not hide a banner that says something else (a failed recording...):
        then it goes to the status bar only.
        """
        showing = self.banner.isVisible() and not self.banner.text().startswith(SILENCE_BANNER)
        if message:
            if not showing:
                self.show_banner(f"{SILENCE_BANNER} {message}\nCheck the microphone, or pick another device.")
            self.message.emit("No sound from the input (digital silence)")
        else:
            if not showing:
                self.hide_banner()
            self.message.emit("Sound from the input again")

    @Slot(str)
    def _on_recording_changed(self, path: str) -> None:
        if path:
            self._show_recording_file(Path(path), "Recording to:")
            self.message.emit(f"Recording to {path}")
        elif self.recording_file is not None:  # stopped: "Saved:" follows when it was saved complete
            self._show_recording_file(self.recording_file, "Last recording:")
        self._update_buttons()

    @Slot(str)
    def _on_recording_saved(self, path: str) -> None:
        """Name the saved recording in the row beside the meter and in the status bar."""
        self._show_recording_file(Path(path), "Saved:")
        self.message.emit(f"Recording saved: {path}")

    def _show_recording_file(self, path: Path, what: str) -> None:
        self.recording_file = path
        self.recording_label.setText(f"{what} {path}")
        for w in (self.recording_label, self.open_folder_button, self.copy_path_button):
            w.setVisible(True)

    @Slot()
    def open_recording_folder(self) -> bool:
        """Open the folder of the recording the row names in the system's file manager."""
        if self.recording_file is None:
            return False
        folder = self.recording_file.parent
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        if not opened:  # no file manager registered (a bare desktop): the path is still shown
            self.message.emit(f"Cannot open the folder {folder}: no file manager answered")
        return bool(opened)

    @Slot()
    def copy_recording_path(self) -> None:
        """Copy the full path of the recording the row names (the label may show it elided)."""
        if self.recording_file is not None:
            QGuiApplication.clipboard().setText(str(self.recording_file))
            self.message.emit(f"Copied {self.recording_file}")

    # ------------------------------------------------------------------ banners
    def show_banner(self, text: str) -> None:
        """Show ``text`` in the banner above the live display."""
        self.banner.setText(text)
        self.banner.setVisible(True)

    def hide_banner(self) -> None:
        """Hide the banner."""
        self.banner.setText("")
        self.banner.setVisible(False)

    def set_unavailable(self, title: str, detail: str) -> None:
        """Disable the live view, saying why (no model...)."""
        self.emotion.show_message(title, detail, state="disabled")
        for w in (self.start_button, self.record_button, self.device_combo, self.refresh_button,
                  self.profile_combo, self.calibrate_button, self.manage_button):
            w.setEnabled(False)

    # ------------------------------------------------------------------ data in (GUI thread)
    @Slot(object)
    def on_prediction(self, pred: Prediction) -> None:
        """Show one prediction (the emotion, the bars; the timeline at the next repaint)."""
        self.predictions_received += 1
        self.last_prediction = pred
        if pred.speech and pred.label is not None:
            self.speech_predictions += 1
            if pred.uncertain:
                self.emotion.show_uncertain(pred.label, pred.confidence)
            else:
                self.emotion.show_emotion(pred.label, pred.confidence)
            self.bars.set_probabilities(pred.probabilities)
            vec = np.array([100.0 * pred.probabilities.get(lab, 0.0) for lab in self.labels])
        else:
            self.silence_predictions += 1
            self.emotion.show_no_speech()
            self.bars.set_probabilities(None)
            vec = np.full(len(self.labels), np.nan)
        self._history.append((pred.end_s, vec))
        while self._history and self._history[0][0] < pred.end_s - TIMELINE_S - 1:
            self._history.popleft()
        if self.affect_names:
            scores = pred.affect if pred.speech else {}
            self.affect_gauge.set_affect(scores)
            self._affect_history.append((pred.end_s, np.array([100.0 * scores[k] if k in scores else np.nan
                                                               for k in self.affect_names])))
            while self._affect_history and self._affect_history[0][0] < pred.end_s - TIMELINE_S - 1:
                self._affect_history.popleft()
        self._timeline_dirty = True

    # ------------------------------------------------------------------ repaint (timer, ~30 fps)
    @Slot()
    def repaint_tick(self) -> None:
        """Redraw the waveform, the level meter, the timeline and the status bar (about 30 times a second)."""
        now = time.monotonic()
        dt, self._last_tick = now - self._last_tick, now
        session = self.controller.session if self.controller is not None else None
        if session is not None:
            self._ticks += 1
            if self.isVisible():  # nothing to draw while the Files tab is shown
                env = self._envelope
                if env is None or env.columns * env.per > session.audio.capacity:
                    n = min(int(WAVEFORM_S * self.rate), session.audio.capacity)
                    env = self._envelope = ScrollingEnvelope(columns=WAVEFORM_COLUMNS,
                                                             per=max(1, n // WAVEFORM_COLUMNS))
                env.update(session.audio)
                x, val = env.line(session.audio)
                self.wave_curve.setData(x / self.rate, val)
                tail = session.audio.latest(int(LEVEL_S * self.rate))
                peak = float(np.max(np.abs(tail))) if tail.size else 0.0
                self.meter.set_level(level_dbfs(tail), 20 * math.log10(peak) if peak > 0 else -math.inf, dt)
                self.waveform_painted.emit(int(session.audio.write_position))
            if self._ticks % STATUS_EVERY == 0:
                self._update_status()
        if self._timeline_dirty:
            self._paint_timeline()

    def _paint_timeline(self) -> None:
        self._timeline_dirty = False
        self._paint_affect_timeline()
        if not self._history:
            for c in self.timeline_curves.values():
                c.setData([], [])
            return
        t_end = self._history[-1][0]
        t = np.array([h[0] for h in self._history]) - t_end
        data = np.stack([h[1] for h in self._history])
        for i, lab in enumerate(self.labels):
            self.timeline_curves[lab].setData(t, data[:, i])

    def _paint_affect_timeline(self) -> None:
        """Redraw the arousal/valence curves (times from the newest prediction, as the emotions')."""
        if not self.affect_names:
            return
        if not self._affect_history:
            for c in self.affect_curves.values():
                c.setData([], [])
            return
        t = np.array([h[0] for h in self._affect_history]) - self._affect_history[-1][0]
        data = np.stack([h[1] for h in self._affect_history])
        for i, name in enumerate(self.affect_names):
            self.affect_curves[name].setData(t, data[:, i])

    def _update_status(self) -> None:
        if self.controller is None:
            return
        stats = self.controller.stats()
        if stats is None:
            return
        self.last_stats = stats
        known = stats.predictions > 0  # the compute time and the delay are measured from the first prediction on
        self.status_compute.setText(f"inference: {stats.last_compute_ms:.1f} ms/step" if known
                                    else "inference: — ms/step")
        self.status_delay.setText(f"delay sound→prediction: {stats.delay_ms:.0f} ms" if known else "delay: — ms")
        lost = f", {stats.lost_samples} samples lost" if stats.lost_samples else ""
        self.status_overruns.setText(f"overruns: {stats.overflows}{lost}")
        if stats.overflows or stats.lost_samples:
            self.status_overruns.setStyleSheet("color:#E69F00; font-weight:bold;")
        else:
            self.status_overruns.setStyleSheet("")
        if stats.device_rate:
            if self.current_device() is not None:
                self._show_device_rate(opened_rate=float(stats.device_rate))
            else:  # a session without a listed device (an array input, tests): the status bar alone
                self.status_rate.setText(f"device {stats.device_rate / 1000:g} kHz → model {self.rate / 1000:g} kHz")

    def shutdown(self) -> None:
        """Stop the timer and the session (window closing)."""
        self.timer.stop()
        self.stop()
