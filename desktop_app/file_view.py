"""File mode: batch analysis in a background thread, per-file waveform + emotion timeline, playback, export."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.export import export_csv, export_json
from desktop_app.palette import SILENCE_COLOR, UNCERTAIN_COLOR, emotion_color, emotion_qcolor, label_text
from desktop_app.player import Player
from desktop_app.profiles import ProfileManager
from desktop_app.settings import AppSettings
from desktop_app.widgets import ColorKey, ProbabilityBars, min_max_envelope, style_plot
from ser_engine.analysis import FileResult, Segment, analyze_file
from ser_engine.audio import AUDIO_EXTENSIONS, find_audio_files, load_audio
from ser_engine.errors import SerError
from ser_engine.model import EmotionModel
from ser_engine.stream import StreamSettings

__all__ = ["COLUMNS", "AnalysisWorker", "FileView", "result_label_text", "timeline_spans"]

COLUMNS = ("File", "Duration (s)", "Dominant emotion", "Confidence (%)", "Speech (s)", "Status")


def result_label_text(label: str | None, uncertain: bool) -> str:
    """The table's emotion text: "Angry", or "uncertain (angry?)" when the model is not sure."""
    if label is None:
        return "no speech"
    return f"uncertain ({label}?)" if uncertain else label_text(label)


class AnalysisWorker(QThread):
    """Analyses files in a background thread; ``cancel()`` stops it at the next window batch.

    Signals
    -------
    files_found(list)
        The expanded list of paths (problem paths first), before any analysis.
    result(int, FileResult)
        Row index and its result, in order.
    """

    files_found = Signal(list)
    result = Signal(int, object)

    def __init__(self, paths: Sequence[Path], model: EmotionModel, settings: StreamSettings,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths = [Path(p) for p in paths]
        self.model = model
        self.stream_settings = settings
        self.cancel_event = threading.Event()
        self.cancelled = False

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        files, problems = find_audio_files(self.paths)
        ordered = [p for p, _ in problems] + list(files)
        self.files_found.emit(ordered)
        for i, (p, msg) in enumerate(problems):
            self.result.emit(i, FileResult(path=p, ok=False, error=msg))
        s = self.stream_settings
        for j, f in enumerate(files):
            if self.cancel_event.is_set():
                break
            try:
                res = analyze_file(f, self.model, window_s=s.window_s, hop_s=s.hop_s,
                                   gate_sensitivity=s.gate_sensitivity, cancel=self.cancel_event)
            except SerError as exc:  # bad settings for this model: reported per file, batch goes on
                res = FileResult(path=f, ok=False, error=f"{f}: {exc}")
            except Exception as exc:
                res = FileResult(path=f, ok=False, error=f"{f}: unexpected error: {exc}")
            self.result.emit(len(problems) + j, res)
        self.cancelled = self.cancel_event.is_set()


class _LoadSignals(QObject):
    done = Signal(object, object, object)  # path, samples or None, error message or None


class _LoadTask(QRunnable):
    def __init__(self, path: Path, rate: int, signals: _LoadSignals) -> None:
        super().__init__()
        self.path, self.rate, self.signals = path, rate, signals

    def run(self) -> None:
        try:
            clip = load_audio(self.path, sample_rate=self.rate)
            self.signals.done.emit(self.path, clip.samples, None)
        except Exception as exc:
            self.signals.done.emit(self.path, None, str(exc))


def timeline_spans(segments: Sequence[Segment], duration_s: float) -> list[tuple[float, float, Segment]]:
    """Non-overlapping spans for overlapping analysis windows.

    Each window owns the time nearest its centre: boundaries are the midpoints
    between consecutive window centres; the first span starts at the first
    window's start and the last ends at the last window's end (at most the
    file's duration).
    """
    segs = sorted(segments, key=lambda s: (s.start_s + s.end_s) / 2)
    if not segs:
        return []
    centres = [(s.start_s + s.end_s) / 2 for s in segs]
    out: list[tuple[float, float, Segment]] = []
    for i, s in enumerate(segs):
        a = s.start_s if i == 0 else (centres[i - 1] + centres[i]) / 2
        b = min(s.end_s, duration_s) if i == len(segs) - 1 else (centres[i] + centres[i + 1]) / 2
        if b > a:
            out.append((a, b, s))
    return out


class FileView(QWidget):
    """Open files/folders (or drop them), analyse them in the background, inspect and export.

    Signals
    -------
    message(str)
    batch_finished(bool)
        Emitted when a batch ends; True when it was cancelled.
    """

    message = Signal(str)
    batch_finished = Signal(bool)

    def __init__(self, *, settings: AppSettings, model: EmotionModel | None, profiles: ProfileManager | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.model = model
        if profiles is None and model is not None:
            profiles = ProfileManager(settings=settings, model=model, parent=self)
        self.profiles = profiles
        self.row_profiles: list[str | None] = []  # the voice profile each row was analysed with
        self.labels = tuple(model.labels) if model is not None else ()
        self.rate = model.feature_config.sample_rate if model is not None else 16000
        self.results: list[FileResult | None] = []
        self.paths: list[Path] = []
        self.worker: AnalysisWorker | None = None
        self._queue: list[Path] = []
        self.player = Player()
        self.loaded_path: Path | None = None
        self.loaded_samples: np.ndarray | None = None
        self._load_signals = _LoadSignals()
        self._load_signals.done.connect(self._on_loaded)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self.setAcceptDrops(True)
        self._build()
        if self.profiles is not None:
            self.profiles.changed.connect(self._update_profile_box)
        self._update_profile_box()
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(33)
        self.play_timer.timeout.connect(self._tick_playhead)
        if model is None:
            for w in (self.open_files_button, self.open_folder_button):
                w.setEnabled(False)
            self.summary.setText("No model loaded: file analysis is disabled.")

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.open_files_button = QPushButton("Open files…")
        self.open_files_button.clicked.connect(self._choose_files)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.clicked.connect(self._choose_folder)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m files")
        self.progress.setValue(0)
        self.progress.setMaximum(1)
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.clicked.connect(self._choose_export_csv)
        self.export_json_button = QPushButton("Export JSON…")
        self.export_json_button.clicked.connect(self._choose_export_json)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        for w in (self.open_files_button, self.open_folder_button, self.cancel_button):
            bar.addWidget(w)
        bar.addWidget(self.progress, 1)
        for w in (self.export_csv_button, self.export_json_button, self.clear_button):
            bar.addWidget(w)
        root.addLayout(bar)
        hint = QLabel("Drop audio files or folders here ("
                      + ", ".join(sorted(e.lstrip(".") for e in AUDIO_EXTENSIONS)) + ")")
        hint.setStyleSheet("color:#909090;")
        hint.setWordWrap(True)  # the row also holds the voice-profile box: let the hint wrap, not widen the window
        hint_row = QHBoxLayout()
        hint_row.addWidget(hint, 1)
        self.profile_box = QCheckBox("Use voice profile")
        self.profile_box.setToolTip("Apply the voice profile chosen in the Live tab to file analysis "
                                    "(for recordings of the same speaker and microphone)")
        self.profile_box.setChecked(self.settings.files_use_profile)
        self.profile_box.toggled.connect(self._profile_toggled)
        hint_row.addWidget(self.profile_box)
        root.addLayout(hint_row)

        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hdr = self.table.horizontalHeader()
        hdr.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        for col in range(1, 5):
            hdr.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 320)
        self.table.verticalHeader().setVisible(False)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        split.addWidget(self.table)

        detail = QWidget()
        dl = QHBoxLayout(detail)
        plots = QVBoxLayout()
        self.wave_plot = pg.PlotWidget()
        wp = self.wave_plot.getPlotItem()
        style_plot(wp, left="amplitude", left_units="FS", bottom="time", bottom_units="s")
        wp.setTitle("Waveform (click to play from there)", size="12pt")
        wp.setYRange(-1, 1, padding=0.02)
        wp.setMouseEnabled(x=True, y=False)
        self.wave_curve = wp.plot(pen=pg.mkPen("#56B4E9", width=1))
        self.playhead = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#FFFFFF", width=2))
        self.playhead.setVisible(False)
        wp.addItem(self.playhead)
        self.wave_plot.scene().sigMouseClicked.connect(self._wave_clicked)
        plots.addWidget(self.wave_plot, 3)
        self.timeline_plot = pg.PlotWidget()
        tp = self.timeline_plot.getPlotItem()
        style_plot(tp, left="top emotion", left_units="%", bottom="time", bottom_units="s")
        tp.setTitle("Emotion timeline (grey = no speech)", size="12pt")
        tp.setYRange(0, 100, padding=0.02)
        tp.setMouseEnabled(x=True, y=False)
        tp.setXLink(wp)
        self.timeline_bars: pg.BarGraphItem | None = None
        self.timeline_playhead = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#FFFFFF", width=2))
        self.timeline_playhead.setVisible(False)
        tp.addItem(self.timeline_playhead)
        plots.addWidget(self.timeline_plot, 2)
        plots.addWidget(ColorKey(self.labels, silence=True))
        dl.addLayout(plots, 3)

        side = QVBoxLayout()
        self.summary = QLabel("Open or drop audio files to analyse them.")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-size:15pt;")
        self.summary.setMinimumWidth(320)
        side.addWidget(self.summary)
        self.distribution = ProbabilityBars(self.labels, title="Distribution over the speech")
        side.addWidget(self.distribution, 1)
        prow = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(self._toggle_play)
        prow.addWidget(self.play_button)
        self.play_label = QLabel("")
        prow.addWidget(self.play_label, 1)
        side.addLayout(prow)
        dl.addLayout(side, 2)
        split.addWidget(detail)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([260, 520])
        root.addWidget(split, 1)
        self._update_buttons()

    # ------------------------------------------------------------------ input
    def _choose_files(self) -> None:
        exts = " ".join(f"*{e}" for e in sorted(AUDIO_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(self, "Open audio files", self.settings.last_folder,
                                                f"Audio ({exts});;All files (*)")
        if files:
            self.settings.last_folder = str(Path(files[0]).parent)
            self.add_paths([Path(f) for f in files])

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of recordings", self.settings.last_folder)
        if folder:
            self.settings.last_folder = folder
            self.add_paths([Path(folder)])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and self.model is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def add_paths(self, paths: Sequence[Path]) -> None:
        """Analyse files and folders (queued behind a running batch)."""
        if self.model is None:
            self.message.emit("No model loaded: cannot analyse files")
            return
        if self.worker is not None:
            self._queue.extend(paths)
            return
        self._start_worker(list(paths))

    # ------------------------------------------------------------------ voice profile
    def _profile_toggled(self, checked: bool) -> None:
        self.settings.files_use_profile = bool(checked)

    def active_profile_name(self) -> str | None:
        p = self.profiles.active_profile() if self.profiles is not None else None
        return None if p is None else p.name

    def _update_profile_box(self) -> None:
        name = self.active_profile_name()
        box = self.profile_box
        box.blockSignals(True)
        box.setChecked(self.settings.files_use_profile)
        box.blockSignals(False)
        if name is None:
            box.setText("Use voice profile (none chosen — calibrate in the Live tab)")
            box.setEnabled(False)
        else:
            box.setText(f"Use voice profile: {name}")
            box.setEnabled(True)

    def analysis_model(self) -> tuple[EmotionModel, str | None]:
        """The model a new batch uses and the name of the voice profile applied (None: uncalibrated)."""
        assert self.model is not None
        if self.profiles is None or not self.settings.files_use_profile:
            return self.model, None
        name = self.active_profile_name()
        return self.profiles.model_for(use_profile=True), name

    def _start_worker(self, paths: list[Path]) -> None:
        assert self.model is not None
        self._batch_offset = len(self.results)
        model, self._batch_profile = self.analysis_model()
        worker = AnalysisWorker(paths, model, self.settings.stream_settings, parent=self)
        worker.files_found.connect(self._on_files_found)
        worker.result.connect(self._on_result)
        worker.finished.connect(self._on_worker_finished)
        self.worker = worker
        self.progress.setValue(0)
        self._update_buttons()
        self.message.emit("Analysing…")
        worker.start(QThread.Priority.LowPriority)

    # ------------------------------------------------------------------ results (GUI thread)
    @Slot(list)
    def _on_files_found(self, paths: list[Path]) -> None:
        for p in paths:
            self.paths.append(p)
            self.results.append(None)
            self.row_profiles.append(self._batch_profile)
            row = self.table.rowCount()
            self.table.insertRow(row)
            self._set_row(row, p, None)
        done = sum(r is not None for r in self.results)
        self.progress.setMaximum(max(1, len(self.results)))
        self.progress.setValue(done)

    @Slot(int, object)
    def _on_result(self, index: int, res: FileResult) -> None:
        row = self._batch_offset + index
        self.results[row] = res
        self._set_row(row, res.path, res)
        self.progress.setValue(sum(r is not None for r in self.results))
        if self.table.currentRow() < 0 and res.ok:
            self.table.selectRow(row)
        elif self.table.currentRow() == row:
            self._show_result(row)

    @Slot()
    def _on_worker_finished(self) -> None:
        worker, self.worker = self.worker, None
        cancelled = bool(worker is not None and worker.cancelled)
        if cancelled:
            for row, r in enumerate(self.results):
                if r is None:
                    p = self.paths[row]
                    self.results[row] = FileResult(path=p, ok=False, error=f"{p}: cancelled")
                    self._set_row(row, self.paths[row], self.results[row])
            self._queue.clear()
        if worker is not None:
            worker.deleteLater()
        n_ok = sum(1 for r in self.results if r is not None and r.ok)
        n_bad = sum(1 for r in self.results if r is not None and not r.ok)
        self.message.emit(f"Analysis {'cancelled' if cancelled else 'finished'}: {n_ok} ok, {n_bad} failed")
        self._update_buttons()
        self.batch_finished.emit(cancelled)
        if self._queue:
            paths, self._queue = self._queue, []
            self._start_worker(paths)

    def _set_row(self, row: int, path: Path, res: FileResult | None) -> None:
        def item(text: str, align_right: bool = False) -> QTableWidgetItem:
            it = QTableWidgetItem(text)
            if align_right:
                it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return it

        name = item(path.name)
        name.setToolTip(str(path))
        self.table.setItem(row, 0, name)
        if res is None:
            cells = ["", "", "", "", "queued"]
        elif not res.ok:
            cells = [f"{res.duration_s:.2f}" if res.duration_s else "", "", "", "", f"error: {res.error}"]
        elif res.label is None:
            cells = [f"{res.duration_s:.2f}", "no speech", "", f"{res.speech_s:.2f}", "ok"]
        else:
            conf = "" if res.confidence is None else f"{res.confidence * 100:.0f}"
            cells = [f"{res.duration_s:.2f}", result_label_text(res.label, res.uncertain), conf,
                     f"{res.speech_s:.2f}", "ok"]
        for col, text in enumerate(cells, start=1):
            it = item(text, align_right=col in (1, 3, 4))
            if col == 5 and res is not None and not res.ok:
                it.setForeground(emotion_qcolor("angry"))
                it.setToolTip(res.error or "")
            if col == 2 and res is not None and res.label is not None:
                it.setForeground(QColor(UNCERTAIN_COLOR) if res.uncertain else emotion_qcolor(res.label))
                if res.uncertain:
                    it.setToolTip(f"The model is not sure: its top emotion, {res.label}, has only "
                                  f"{(res.confidence or 0) * 100:.0f} %")
            if col == 5 and row < len(self.row_profiles) and self.row_profiles[row] and res is not None and res.ok:
                it.setText(f"ok (voice profile: {self.row_profiles[row]})")
            self.table.setItem(row, col, it)

    # ------------------------------------------------------------------ detail
    def _selection_changed(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.results):
            self._show_result(row)

    def _show_result(self, row: int) -> None:
        res = self.results[row]
        path = self.paths[row]
        self.player.stop()
        self.play_timer.stop()
        self._set_play_button()
        if res is None:
            self.summary.setText(f"{path.name}: waiting for analysis…")
            return
        if not res.ok:
            self.summary.setText(f"<b>{path.name}</b><br>could not be analysed:<br>{res.error}")
            self.distribution.set_probabilities(None)
            self._draw_timeline(res)
            self.wave_curve.setData([], [])
            self.loaded_path, self.loaded_samples = None, None
            self.play_button.setEnabled(False)
            return
        if res.label is None:
            text = f"<b>{path.name}</b><br>no speech found ({res.duration_s:.1f} s of audio)"
        elif res.uncertain:
            conf = (res.confidence or 0.0) * 100
            text = (f"<b>{path.name}</b><br>dominant emotion: <span style='color:{UNCERTAIN_COLOR}; "
                    f"font-size:22pt;'><i>Uncertain</i></span><br>perhaps {res.label} ({conf:.0f} %)<br>"
                    f"speech {res.speech_s:.1f} s of {res.duration_s:.1f} s")
        else:
            colour = emotion_color(res.label)
            conf = (res.confidence or 0.0) * 100
            text = (f"<b>{path.name}</b><br>dominant emotion: <span style='color:{colour}; font-size:22pt;'>"
                    f"<b>{label_text(res.label)}</b></span> ({conf:.0f} %)<br>"
                    f"speech {res.speech_s:.1f} s of {res.duration_s:.1f} s")
        if res.label is not None and row < len(self.row_profiles) and self.row_profiles[row]:
            text += f"<br><span style='color:#909090'>voice profile: {self.row_profiles[row]}</span>"
        self.summary.setText(text)
        self.distribution.set_probabilities(res.probabilities)
        self._draw_timeline(res)
        if self.loaded_path != path:
            self.loaded_path, self.loaded_samples = path, None
            self.wave_curve.setData([], [])
            self.play_button.setEnabled(False)
            self._pool.start(_LoadTask(path, self.rate, self._load_signals))

    def _draw_timeline(self, res: FileResult) -> None:
        tp = self.timeline_plot.getPlotItem()
        if self.timeline_bars is not None:
            tp.removeItem(self.timeline_bars)
            self.timeline_bars = None
        spans = timeline_spans(res.segments, res.duration_s)
        self.timeline_spans = spans
        if not spans:
            return
        x0 = np.array([a for a, _, _ in spans])
        width = np.array([b - a for a, b, _ in spans])
        heights = []
        brushes = []
        for _, _, s in spans:
            if s.speech and s.label is not None:
                heights.append(100.0 * s.probabilities.get(s.label, 0.0))
                brushes.append(pg.mkBrush(emotion_qcolor(s.label, 110 if s.uncertain else 255)))
            else:
                heights.append(100.0)
                brushes.append(pg.mkBrush(SILENCE_COLOR))
        self.timeline_bars = pg.BarGraphItem(x0=x0, width=width, height=np.array(heights), brushes=brushes,
                                             pen=pg.mkPen("#101010", width=0.5))
        tp.addItem(self.timeline_bars)
        tp.setXRange(0, max(res.duration_s, 0.1), padding=0.01)

    @Slot(object, object, object)
    def _on_loaded(self, path: Path, samples: np.ndarray | None, error: str | None) -> None:
        if path != self.loaded_path:
            return  # the user moved on
        if samples is None:
            self.message.emit(f"Cannot show {path.name}: {error}")
            return
        self.loaded_samples = samples
        idx, val = min_max_envelope(samples, 2000)
        self.wave_curve.setData(idx / self.rate, val)
        self.wave_plot.getPlotItem().setXRange(0, max(samples.shape[0] / self.rate, 0.1), padding=0.01)
        self.player.load(samples, self.rate)
        self.play_button.setEnabled(True)

    # ------------------------------------------------------------------ playback
    def _wave_clicked(self, event: object) -> None:
        if self.loaded_samples is None:
            return
        pos = event.scenePos()  # type: ignore[attr-defined]
        vb = self.wave_plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(pos):
            return
        self.play_from(float(vb.mapSceneToView(pos).x()))

    def play_from(self, t_s: float) -> None:
        try:
            self.player.play(t_s)
        except RuntimeError as exc:
            self.message.emit(f"Playback: {exc}")
            return
        self.play_timer.start()
        self._set_play_button()

    def _toggle_play(self) -> None:
        if self.player.playing:
            self.player.stop()
            self._set_play_button()
        else:
            start = self.player.position_s if self.player.position_s < self.player.duration_s - 0.05 else 0.0
            self.play_from(start)

    def _set_play_button(self) -> None:
        self.play_button.setText("Stop" if self.player.playing else "Play")

    def _tick_playhead(self) -> None:
        t = self.player.position_s
        for line in (self.playhead, self.timeline_playhead):
            line.setVisible(True)
            line.setValue(t)
        self.play_label.setText(f"{t:5.1f} s / {self.player.duration_s:.1f} s")
        if not self.player.playing:
            self.play_timer.stop()
            self._set_play_button()

    # ------------------------------------------------------------------ batch control
    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self._queue.clear()

    def clear(self) -> None:
        if self.worker is not None:
            return
        self.player.stop()
        self.results.clear()
        self.paths.clear()
        self.row_profiles.clear()
        self.table.setRowCount(0)
        self.progress.setValue(0)
        self.summary.setText("Open or drop audio files to analyse them.")
        self.distribution.set_probabilities(None)
        self.wave_curve.setData([], [])
        if self.timeline_bars is not None:
            self.timeline_plot.getPlotItem().removeItem(self.timeline_bars)
            self.timeline_bars = None
        self.loaded_path, self.loaded_samples = None, None
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.worker is not None
        self.cancel_button.setEnabled(busy)
        have = any(r is not None for r in self.results)
        self.export_csv_button.setEnabled(have and not busy)
        self.export_json_button.setEnabled(have and not busy)
        self.clear_button.setEnabled(have and not busy)

    @property
    def busy(self) -> bool:
        return self.worker is not None

    # ------------------------------------------------------------------ export
    def finished_results(self) -> list[FileResult]:
        return [r for r in self.results if r is not None]

    def export_csv(self, path: Path) -> tuple[Path, Path]:
        return export_csv(self.finished_results(), path, labels=self.labels)

    def export_json(self, path: Path) -> Path:
        return export_json(self.finished_results(), path)

    def _choose_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export table and timeline as CSV",
                                              os.path.join(self.settings.last_folder, "ser-analysis.csv"),
                                              "CSV (*.csv)")
        if path:
            try:
                table, segs = self.export_csv(Path(path))
                self.message.emit(f"Exported {table} and {segs}")
            except OSError as exc:
                self.message.emit(f"Cannot write {path}: {exc.strerror or exc}")

    def _choose_export_json(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export results as JSON",
                                              os.path.join(self.settings.last_folder, "ser-analysis.json"),
                                              "JSON (*.json)")
        if path:
            try:
                self.message.emit(f"Exported {self.export_json(Path(path))}")
            except OSError as exc:
                self.message.emit(f"Cannot write {path}: {exc.strerror or exc}")

    def shutdown(self) -> None:
        self.player.stop()
        self.play_timer.stop()
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(10000)
        self._pool.waitForDone(5000)
