""""Calibrate to my voice": a guided dialog that records ~15 s of calm speech and saves a voice profile.

Steps (one page each):

1. *Why and what to read* — the input device, a live level meter, **Start**.
2. *Recording* — a 3-2-1 countdown, then ~15 s of recording with a progress bar and the
   seconds left, the level meter live, **Stop early**.
3. *Result* — seconds of speech used, then how the recording's *held-out* neutral speech reads
   before and after calibration (:func:`ser_engine.inference.profile_check.check_held_out`:
   each half of the speech scored with a profile made from the other half; said plainly when
   calibration does not help), a name, **Save** / **Record again** / **Cancel**; or, when there
   was too little speech, silence or a device problem, the reason and **Record again**. Nothing
   is saved before **Save**; after it the page says the profile is saved and active, and
   **Close** closes the dialog.

The microphone is read through :class:`ser_engine.live.inputs.LiveInput`, whose callback only
copies into a ring buffer; the GUI timer reads the newest samples for the meter, and the
profile is built (resampling, speech gate, features, model) on a worker thread, which then runs
the held-out check while the result is already shown. The saved profile is made from all of the
speech; the check's profiles exist only for the check.

The dialog does not know about live listening: whoever paused listening to open it resumes on
:attr:`CalibrationDialog.closed`, emitted once when the dialog closes, after its microphone is
released.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.app_log import bug_message
from desktop_app.profiles import ProfileManager
from desktop_app.widgets import LevelMeter
from ser_engine.dsp.audio import resample
from ser_engine.dsp.gate import level_dbfs
from ser_engine.errors import DeviceError, ProfileError, SerError
from ser_engine.inference.model import EmotionModel
from ser_engine.inference.profile import MIN_SPEECH_S, VoiceProfile, profile_from_audio
from ser_engine.inference.profile_check import HeldOutCheck, check_held_out
from ser_engine.logs import get_logger

__all__ = ["CALIBRATION_TEXT", "CalibrationDialog", "InputFactory"]

log = get_logger("app")

CALIBRATION_TEXT = (
    "The North Wind and the Sun were disputing which was the stronger, when a traveller came along "
    "wrapped in a warm cloak. They agreed that the one who first made the traveller take his cloak "
    "off should be considered stronger than the other. Then the North Wind blew as hard as he could, "
    "but the more he blew the more closely did the traveller fold his cloak around him."
)
WHY_TEXT = (
    "The model hears every voice, room and microphone a little differently. Reading the text below "
    "in your calm, normal voice lets it learn how <i>you</i> sound when you are neutral, so it "
    "reads your emotions more fairly."
)
TICK_MS = 33
LEVEL_S = 0.05
WIDTH = 720
"""The dialog's default width; its height follows the current page's content."""
WARN_COLOR = "#E69F00"
GOOD_COLOR = "#009E73"

InputFactory = Callable[..., Any]
"""Builds a microphone input like :class:`ser_engine.live.session.LiveInput` (``device, ring_seconds=``)."""


def _default_input(device: int | str | None, *, ring_seconds: float) -> Any:
    from ser_engine.live.inputs import LiveInput

    return LiveInput(device, ring_seconds=ring_seconds)


class _Signals(QObject):
    done = Signal(int, object)  # attempt, VoiceProfile or error message
    checked = Signal(int, object)  # attempt, HeldOutCheck or the reason the check could not be made


class _Pages(QWidget):
    """The dialog's pages, one shown at a time (the part of :class:`QStackedWidget`'s API used here).

    Unlike a stacked widget, whose size is its largest page's, the pages not shown are hidden
    widgets of a box layout and take no room: the dialog's size hint is the current page's, so
    fitting the dialog to it leaves no empty band under a short page.
    """

    def __init__(self) -> None:
        super().__init__()
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(0, 0, 0, 0)
        self._pages: list[QWidget] = []
        self._current = -1

    def addWidget(self, page: QWidget) -> int:
        """Add a page (hidden unless it is the first); returns its index."""
        self._pages.append(page)
        self._box.addWidget(page)
        if self._current < 0:
            self._current = 0
        page.setVisible(len(self._pages) - 1 == self._current)
        return len(self._pages) - 1

    def count(self) -> int:
        """Return the number of pages."""
        return len(self._pages)

    def currentIndex(self) -> int:
        """Return the index of the page shown."""
        return self._current

    def currentWidget(self) -> QWidget:
        """Return the page shown."""
        return self._pages[self._current]

    def setCurrentIndex(self, index: int) -> None:
        """Show page ``index`` and hide the others."""
        self._current = index
        for i, page in enumerate(self._pages):
            page.setVisible(i == index)


class CalibrationDialog(QDialog):
    """The guided calibration dialog.

    Parameters
    ----------
    model : EmotionModel
        The uncalibrated model the profile is made for.
    profiles : ProfileManager
        Where the profile is saved (and made active).
    device : int, str or None
        Input device (index or name; None = the system default).
    device_name : str
        How the device is shown to the user.
    countdown_s : int
        Seconds of 3-2-1 countdown before recording.
    record_s : float
        Seconds of recording (the user may stop early).
    input_factory : callable, optional
        Builds the input (default :class:`ser_engine.live.session.LiveInput`).
    gate_sensitivity : float
        Speech gate sensitivity in [0, 1] for the profile and its check.

    Attributes
    ----------
    recording : ndarray or None
        The last recording's samples at the input's rate (:attr:`rate`).
    profile : VoiceProfile or None
        The profile made from all of the recording's speech (the one **Save** saves).
    check, check_error : HeldOutCheck or None, str or None
        The held-out check of ``profile`` once made, or why it could not be made.

    Signals
    -------
    saved(object)
        The path of the saved profile file.
    state_changed(str)
        ``"intro"``, ``"countdown"``, ``"recording"``, ``"analysing"``, ``"result"``, ``"failed"``,
        ``"saved"``.
    closed(bool)
        Emitted once when the dialog closes (Save then Close, Cancel, Escape, the window's close
        button), after its microphone is released, so live listening paused for the calibration
        can open the device again; True when a profile was saved.
    """

    saved = Signal(object)
    state_changed = Signal(str)
    closed = Signal(bool)

    def __init__(self, *, model: EmotionModel, profiles: ProfileManager, device: int | str | None = None,
                 device_name: str = "the default input", countdown_s: int = 3, record_s: float = 15.0,
                 input_factory: InputFactory | None = None, gate_sensitivity: float = 0.5,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.profiles = profiles
        self.device = device
        self.device_name = device_name
        self.countdown_s = max(0, int(countdown_s))
        self.record_s = float(record_s)
        self.gate_sensitivity = float(gate_sensitivity)
        self._factory: InputFactory = input_factory or _default_input
        self.input: Any = None
        self.state = "intro"
        self.recording: np.ndarray | None = None
        self.profile: VoiceProfile | None = None
        self.check: HeldOutCheck | None = None  # the held-out check of the profile shown
        self.check_error: str | None = None  # why the held-out check could not be made
        self.error: str | None = None
        self.saved_path: Any = None
        self._closed = False
        self._record_start = 0
        self._recorded_s = 0.0
        self._countdown_left = 0
        self._attempt = 0
        self._thread: threading.Thread | None = None
        self._signals = _Signals()
        self._signals.done.connect(self._on_done)
        self._signals.checked.connect(self._on_checked)
        self.setWindowTitle("Calibrate to my voice")
        self.setModal(True)
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.count_timer = QTimer(self)
        self.count_timer.setInterval(1000)
        self.count_timer.timeout.connect(self._count)
        QTimer.singleShot(0, self._open_input)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        self.steps = QLabel()
        self.steps.setStyleSheet("color:#909090; font-size:11pt;")
        root.addWidget(self.steps)
        self.pages = _Pages()
        root.addWidget(self.pages, 1)

        # step 1 ------------------------------------------------------------
        intro = QWidget()
        il = QVBoxLayout(intro)
        why = QLabel(WHY_TEXT)
        why.setWordWrap(True)
        why.setStyleSheet("font-size:12pt;")
        il.addWidget(why)
        il.addWidget(QLabel("<b>Read this aloud, calmly, as you would normally speak:</b>"))
        self.text_label = QLabel(CALIBRATION_TEXT)
        self.text_label.setWordWrap(True)
        self.text_label.setStyleSheet("font-size:15pt; padding:10px; background:#262626; border-radius:6px;")
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        il.addWidget(self.text_label)
        self.device_label = QLabel()
        il.addWidget(self.device_label)
        self.input_error = QLabel()
        self.input_error.setWordWrap(True)
        self.input_error.setStyleSheet("background:#5a1e00; color:white; padding:6px;")
        self.input_error.setVisible(False)
        il.addWidget(self.input_error)
        il.addStretch(1)
        self.pages.addWidget(intro)

        # step 2 ------------------------------------------------------------
        rec = QWidget()
        rl = QVBoxLayout(rec)
        self.count_label = QLabel("3")
        f = QFont()
        f.setPointSize(40)
        f.setBold(True)
        self.count_label.setFont(f)
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        rl.addWidget(self.count_label)
        self.rec_hint = QLabel("Get ready to read the text aloud.")
        self.rec_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.rec_hint.setStyleSheet("font-size:13pt;")
        rl.addWidget(self.rec_hint)
        self.rec_text = QLabel(CALIBRATION_TEXT)
        self.rec_text.setWordWrap(True)
        self.rec_text.setStyleSheet("font-size:14pt; padding:10px; background:#262626; border-radius:6px;")
        rl.addWidget(self.rec_text)
        self.progress = QProgressBar()
        self.progress.setRange(0, max(1, round(self.record_s * 10)))
        self.progress.setValue(0)
        self.progress.setFormat(f"{math.ceil(self.record_s):.0f} s left")
        rl.addWidget(self.progress)
        rl.addStretch(1)
        self.pages.addWidget(rec)

        # step 3 ------------------------------------------------------------
        res = QWidget()
        sl = QVBoxLayout(res)
        self.result_title = QLabel()
        g = QFont()
        g.setPointSize(18)
        g.setBold(True)
        self.result_title.setFont(g)
        self.result_title.setWordWrap(True)
        sl.addWidget(self.result_title)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        sl.addWidget(self.busy)
        self.result_text = QLabel()
        self.result_text.setWordWrap(True)
        self.result_text.setTextFormat(Qt.TextFormat.RichText)
        self.result_text.setStyleSheet("font-size:13pt;")
        sl.addWidget(self.result_text)
        self.check_text = QLabel()  # the held-out check: before/after and what it means
        self.check_text.setWordWrap(True)
        self.check_text.setTextFormat(Qt.TextFormat.RichText)
        self.check_text.setStyleSheet("font-size:13pt;")
        sl.addWidget(self.check_text)
        self.save_note = QLabel()  # before Save: nothing is saved yet; after it: saved and active
        self.save_note.setWordWrap(True)
        self.save_note.setTextFormat(Qt.TextFormat.RichText)
        self.save_note.setStyleSheet("font-size:12pt;")
        sl.addWidget(self.save_note)
        name_row = QHBoxLayout()
        self.name_label = QLabel("Name:")
        name_row.addWidget(self.name_label)
        self.name_edit = QLineEdit()
        self.name_edit.setText(f"My voice {datetime.now():%Y-%m-%d}")
        self.name_edit.textChanged.connect(lambda _t: self._update_buttons())
        name_row.addWidget(self.name_edit, 1)
        sl.addLayout(name_row)
        sl.addStretch(1)
        self.pages.addWidget(res)

        # always visible: level meter and buttons ---------------------------
        self.meter_row = QWidget()
        meter_row = QHBoxLayout(self.meter_row)
        meter_row.setContentsMargins(0, 0, 0, 0)
        meter_row.addWidget(QLabel("Level:"))
        self.meter = LevelMeter()
        meter_row.addWidget(self.meter, 1)
        root.addWidget(self.meter_row)
        buttons = QHBoxLayout()
        self.retry_input_button = QPushButton("Try the microphone again")
        self.retry_input_button.clicked.connect(self._open_input)
        buttons.addWidget(self.retry_input_button)
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        self.close_button = QPushButton("Close")  # after Save: the profile is kept whichever way it closes
        self.close_button.clicked.connect(self.accept)
        self.again_button = QPushButton("Record again")
        self.again_button.clicked.connect(self.record_again)
        self.stop_button = QPushButton("Stop early")
        self.stop_button.clicked.connect(self.stop_early)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        for b in (self.cancel_button, self.again_button, self.stop_button, self.start_button, self.save_button,
                  self.close_button):
            buttons.addWidget(b)
        root.addLayout(buttons)
        self._set_state("intro")

    # ------------------------------------------------------------------ state
    def _set_state(self, state: str) -> None:
        self.state = state
        page = {"intro": 0, "countdown": 1, "recording": 1}.get(state, 2)
        self.pages.setCurrentIndex(page)
        step = page + 1
        names = ("Read a short text", "Recording", "Result")
        self.steps.setText("   ›   ".join(
            f"<b style='color:#E0E0E0'>{i + 1}. {n}</b>" if i + 1 == step else f"{i + 1}. {n}"
            for i, n in enumerate(names)))
        self.meter_row.setVisible(page < 2)  # the microphone is closed on the result page
        ok = state == "result"
        for w in (self.name_label, self.name_edit):
            w.setVisible(ok)
        self._update_notes()
        self._update_busy()
        self._update_buttons()
        self._fit_height()
        self.state_changed.emit(state)

    @property
    def checking(self) -> bool:
        """Whether the held-out check of the profile shown is still running."""
        return self.state == "result" and self.check is None and self.check_error is None

    def _update_notes(self) -> None:
        s = self.state
        # after Save, the check stays on the page if it had finished (a running one is dropped)
        self.check_text.setVisible(s == "result" or (
            s == "saved" and (self.check is not None or self.check_error is not None)))
        # a check that found no improvement already says that nothing is saved before Save
        self.save_note.setVisible(s == "saved" or (s == "result" and (self.check is None or self.check.improved)))

    def _update_busy(self) -> None:
        self.busy.setVisible(self.state == "analysing" or self.checking)

    def _fit_height(self) -> None:
        """Make the dialog exactly as high as the current page's content needs at its width: no empty band.

        The height is also the minimum (the content is never cut); the width cannot go below
        :data:`WIDTH`, where that height was measured. Enlarged by the user, the room goes under
        the page's content.
        """
        layout = self.layout()
        if layout is None:
            return
        width = max(self.width(), WIDTH)
        need = self.height()
        for _ in range(4):  # measure until the height holds (resizing re-wraps nothing at a fixed width)
            # A label's new text or a widget shown or hidden reaches the outer layouts only through layout
            # requests posted one nesting level at a time; drop every cached size now instead.
            for w in self.findChildren(QWidget):
                w.updateGeometry()
            for lay in self.findChildren(QLayout):
                lay.invalidate()
            layout.invalidate()
            layout.activate()
            need = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else -1
            if need <= 0:
                need = layout.totalSizeHint().height()
            if need == self.height() and width == self.width():
                break
            self.setMinimumSize(WIDTH, need)
            self.resize(width, need)
        self.setMinimumSize(WIDTH, need)

    def _update_buttons(self) -> None:
        s = self.state
        opened = self.input is not None
        self.start_button.setVisible(s == "intro")
        self.start_button.setEnabled(s == "intro" and opened)
        self.retry_input_button.setVisible(s == "intro" and not opened)
        self.stop_button.setVisible(s in ("countdown", "recording"))
        self.stop_button.setText("Stop early" if s == "recording" else "Back")
        self.cancel_button.setVisible(s != "saved")
        self.close_button.setVisible(s == "saved")
        self.again_button.setVisible(s in ("result", "failed"))
        self.save_button.setVisible(s == "result")
        self.save_button.setEnabled(s == "result" and bool(self.name_edit.text().strip()))

    # ------------------------------------------------------------------ input
    @Slot()
    def _open_input(self) -> bool:
        """Open the microphone (step 1's meter runs from it); says why when it cannot.

        Never after the dialog has closed: the first opening is queued at construction, and a
        dialog closed before it runs must not leave a stream running for a deleted dialog.
        """
        if self._closed:
            return False
        self._close_input()
        self.device_label.setText(f"Microphone: <b>{self.device_name}</b>")
        reason: str | None = None
        try:
            inp = self._factory(self.device, ring_seconds=self.countdown_s + self.record_s + 10.0)
            inp.start()
        except SerError as exc:  # DeviceError: the device's own words
            reason = str(exc) or type(exc).__name__
        except Exception as exc:  # a bug: said here too, the traceback in the log
            log.exception("opening the microphone for calibration failed")
            reason = bug_message(exc)
        if reason is not None:
            self.input = None
            self.input_error.setText(f"The microphone cannot be opened: {reason}\n"
                                     "Check that it is connected (and chosen in the Live tab), then try again.")
            self.input_error.setVisible(True)
            self.meter.reset()
            self._update_buttons()
            return False
        self.input = inp
        self.input_error.setVisible(False)
        self.timer.start()
        self._update_buttons()
        return True

    def _close_input(self) -> None:
        self.timer.stop()
        inp, self.input = self.input, None
        if inp is not None:
            with contextlib.suppress(Exception):  # closing a lost device: nothing more to do
                inp.stop()
        self.meter.reset()

    @property
    def rate(self) -> int:
        """The input's sample rate (the model's before an input is open)."""
        return int(getattr(self.input, "device_rate", 0) or self.model.feature_config.sample_rate)

    @Slot()
    def _tick(self) -> None:
        inp = self.input
        ring = getattr(inp, "ring", None)
        if inp is None or ring is None:
            return
        tail = ring.latest(max(1, int(LEVEL_S * self.rate)))
        peak = float(np.max(np.abs(tail))) if tail.size else 0.0
        self.meter.set_level(level_dbfs(tail), 20 * math.log10(peak) if peak > 0 else -math.inf, TICK_MS / 1000)
        err = inp.check() if hasattr(inp, "check") else None
        if err is not None:
            self._device_failed(err)
            return
        if self.state == "recording":
            done = (ring.write_position - self._record_start) / self.rate
            self._recorded_s = done
            left = max(0.0, self.record_s - done)
            self.progress.setValue(min(self.progress.maximum(), round(done * 10)))
            self.progress.setFormat(f"{math.ceil(left - 1e-6):.0f} s left")
            if done >= self.record_s:
                self._finish_recording()

    def _device_failed(self, err: BaseException) -> None:
        was = self.state
        self.count_timer.stop()
        self._close_input()
        message = str(err) or type(err).__name__
        if was == "intro":
            self.input_error.setText(f"The microphone stopped: {message}")
            self.input_error.setVisible(True)
            self._update_buttons()
            return
        self._show_failure("The microphone stopped", f"{message}<br>Check the microphone, then record again.")

    # ------------------------------------------------------------------ steps
    @Slot()
    def start(self) -> None:
        """Step 1 -> 2: the countdown (then the recording)."""
        if self.state != "intro" or self.input is None:
            return
        self._countdown_left = self.countdown_s
        self.progress.setValue(0)
        self.progress.setFormat(f"{math.ceil(self.record_s):.0f} s left")
        if self._countdown_left <= 0:
            self._begin_recording()
            return
        self.count_label.setText(str(self._countdown_left))
        self.count_label.setStyleSheet("color:#E0E0E0;")
        self.rec_hint.setText("Recording starts in a moment: get ready to read the text aloud.")
        self._set_state("countdown")
        self.count_timer.start()

    @Slot()
    def _count(self) -> None:
        self._countdown_left -= 1
        if self._countdown_left > 0:
            self.count_label.setText(str(self._countdown_left))
        else:
            self.count_timer.stop()
            self._begin_recording()

    def _begin_recording(self) -> None:
        ring = getattr(self.input, "ring", None)
        if ring is None:
            self._device_failed(DeviceError(f"{self.device_name}: no audio"))
            return
        self._record_start = int(ring.write_position)
        self._recorded_s = 0.0
        self.count_label.setText("● Recording")
        self.count_label.setStyleSheet("color:#D55E00;")
        self.rec_hint.setText("Read the text aloud in your calm, normal voice.")
        self._set_state("recording")

    @Slot()
    def stop_early(self) -> None:
        """Stop the countdown (back to the start) or the recording (analyse what was recorded)."""
        if self.state == "countdown":
            self.count_timer.stop()
            self._set_state("intro")
        elif self.state == "recording":
            self._finish_recording()

    def _finish_recording(self) -> None:
        """Take the recorded samples, close the device, build the profile on a worker thread."""
        inp = self.input
        ring = getattr(inp, "ring", None)
        audio: np.ndarray | None = None
        rate = self.rate
        if ring is not None:
            n = int(ring.write_position) - self._record_start
            audio = ring.copy_range(self._record_start, n) if n > 0 else np.zeros(0, np.float32)
        self._close_input()
        if audio is None:
            self._show_failure("The recording was lost", "the input buffer overflowed; please record again.")
            return
        self.recording = audio
        self._recorded_s = audio.shape[0] / rate
        self._attempt += 1
        attempt = self._attempt
        self.result_title.setText("Analysing your recording…")
        self.result_text.setText(f"{self._recorded_s:.1f} s recorded.")
        self._set_state("analysing")
        model, sens, signals = self.model, self.gate_sensitivity, self._signals
        target = model.feature_config.sample_rate

        def work() -> None:  # worker thread: resample, gate, features, model; then the held-out check
            try:
                y = np.asarray(audio, dtype=np.float32)
                if rate != target:
                    y = resample(y, orig_sr=rate, target_sr=target)
                # The profile saved is made from all of the speech; the check's own profiles from halves of it.
                prof = profile_from_audio(y, model=model, name="My voice", sources=("microphone",),
                                          gate_sensitivity=sens)
                signals.done.emit(attempt, prof)
            except ProfileError as exc:
                signals.done.emit(attempt, str(exc))
                return
            except Exception as exc:  # a bug: said in the dialog, the traceback in the log
                log.exception("analysing the calibration recording failed")
                signals.done.emit(attempt, f"the recording could not be analysed: {bug_message(exc)}")
                return
            try:
                signals.checked.emit(attempt, check_held_out(audio=y, model=model, gate_sensitivity=sens))
            except ProfileError as exc:
                signals.checked.emit(attempt, str(exc))
            except Exception as exc:  # a bug: the profile stays usable; the reason is shown, the traceback logged
                log.exception("checking the voice profile on held-out speech failed")
                signals.checked.emit(attempt, bug_message(exc))

        self._thread = threading.Thread(target=work, name="ser-calibration", daemon=True)
        self._thread.start()

    @Slot(int, object)
    def _on_done(self, attempt: int, outcome: object) -> None:
        if attempt != self._attempt or self.state != "analysing":
            return  # the user moved on
        if isinstance(outcome, VoiceProfile):
            self.profile, self.error = outcome, None
            self._show_result(outcome)
        else:
            self.profile = None
            message = str(outcome)
            title = "Not enough speech"
            if "speech" not in message.lower():
                title = "Calibration failed"
            detail = (f"{message}<br><br>Read the whole text aloud at a normal level, close enough to the microphone "
                      f"for the level meter to reach the green zone (at least {MIN_SPEECH_S:g} s of speech), "
                      "then press <b>Record again</b>.")
            self._show_failure(title, detail)

    def _show_failure(self, title: str, detail: str) -> None:
        self.error = f"{title}: {detail}"
        self.result_title.setText(title)
        self.result_title.setStyleSheet("color:#E69F00;")
        self.result_text.setText(detail)
        self._set_state("failed")

    def _show_result(self, profile: VoiceProfile) -> None:
        self.check, self.check_error = None, None
        self.result_title.setText("Your voice profile is ready")
        self.result_title.setStyleSheet(f"color:{GOOD_COLOR};")
        self.result_text.setText(
            f"Speech used: <b>{profile.speech_s:.1f} s</b> ({profile.n_windows} analysis windows) "
            f"of {self._recorded_s:.1f} s recorded.")
        self.check_text.setText("Checking how your neutral speech reads with and without calibration…")
        self.save_note.setText("Nothing is saved until you press <b>Save</b>.")
        self._set_state("result")
        self.name_edit.setFocus()
        self.name_edit.selectAll()

    @Slot(int, object)
    def _on_checked(self, attempt: int, outcome: object) -> None:
        if attempt != self._attempt or self.state != "result" or self.profile is None:
            return  # the user moved on (recorded again, saved or closed)
        if isinstance(outcome, HeldOutCheck):
            self.check = outcome
            self.check_text.setText(self.describe_check(outcome))
        else:
            self.check_error = str(outcome) or "unknown reason"
            self.check_text.setText(
                f"<span style='color:{WARN_COLOR}'>How well calibration works on your voice could not be "
                f"checked: {self.check_error}.</span> The profile can still be saved.")
        self._update_notes()
        self._update_busy()
        self._fit_height()

    @staticmethod
    def describe_check(check: HeldOutCheck, *, saved: bool = False) -> str:
        """Say what the held-out check found, and plainly when calibration does not help.

        Parameters
        ----------
        check : HeldOutCheck
        saved : bool
            The profile has been saved: no advice about saving it.

        Returns
        -------
        str
            Rich text for the result page.
        """
        label = check.label
        lines = (
            f"Your held-out {label} speech: read as {label} in <b>{check.before_share * 100:.0f} %</b> of windows "
            f"before calibration, <b>{check.after_share * 100:.0f} %</b> after "
            f"(mean {label} probability {check.before_mean * 100:.0f} % before, {check.after_mean * 100:.0f} % "
            f"after).<br><span style='font-size:11pt; color:#909090'>Held out: each half of your speech was "
            f"scored with a profile made from the other half only ({check.n_held_out} of "
            f"{check.n_windows} windows; the {check.n_straddling} that cross the middle are not scored).</span><br>")
        if check.improved:
            return lines + (f"<span style='color:{GOOD_COLOR}'>Calibration makes your {label} speech read as "
                            f"{label} more often.</span>")
        if check.before_share >= 1.0:
            why = f"it already read as {label} in every held-out window without calibration"
        elif check.after_share < check.before_share:
            why = f"fewer held-out windows read as {label} with it"
        else:
            why = f"as many held-out windows read as {label} with it as without"
        advice = "" if saved else (" It is saved only if you press <b>Save</b>; <b>Record again</b> tries a new "
                                   "recording, <b>Cancel</b> changes nothing.")
        return lines + (f"<span style='color:{WARN_COLOR}'>Calibration did not make your {label} speech read more "
                        f"{label} ({why}).{advice}</span>")

    @Slot()
    def record_again(self) -> None:
        """Drop the result and start over from the first step."""
        self.profile, self.error = None, None
        self.check, self.check_error = None, None
        self.result_title.setStyleSheet("")
        self._set_state("intro")
        self._open_input()

    @Slot()
    def save(self) -> None:
        """Save the profile under the name given (made active); the page then says so, and **Close** closes."""
        if self.profile is None or self.state != "result":
            return
        name = self.name_edit.text().strip()
        if not name:
            return
        profile = dataclasses.replace(self.profile, name=name)
        try:
            path = self.profiles.save(profile)
        except (OSError, ProfileError) as exc:
            self.save_note.setText(f"<span style='color:{WARN_COLOR}'>Cannot save the profile: {exc}</span>")
            self._fit_height()
            return
        self.saved_path = path
        self._attempt += 1  # a check still running is not shown on the saved page
        self.result_title.setText(f"Saved: “{name}”")
        if self.check is not None:
            self.check_text.setText(self.describe_check(self.check, saved=True))
        self.save_note.setText(
            "It is now the active voice profile in live mode; the Files tab uses it when "
            "<i>Use voice profile</i> is ticked.")
        self._set_state("saved")
        self.close_button.setDefault(True)
        self.close_button.setFocus()
        self.saved.emit(path)

    # ------------------------------------------------------------------ closing
    def done(self, result: int) -> None:
        """Close the dialog with ``result``, closing the microphone first (Qt's API); then emit :attr:`closed`."""
        self.count_timer.stop()
        self._close_input()
        self._attempt += 1  # a result still being computed is dropped
        super().done(result)
        if not self._closed:
            self._closed = True
            self.closed.emit(self.saved_path is not None)

    def closeEvent(self, event: Any) -> None:
        """Close the microphone with the window (Qt's event handler)."""
        self.count_timer.stop()
        self._close_input()
        super().closeEvent(event)
