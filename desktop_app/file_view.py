"""File mode: batch analysis in a background thread, per-file waveform + emotion timeline, playback, export."""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.affect import affect_axis, affect_title_html, lean_text, segment_affect_curve
from desktop_app.app_log import bug_message, details_hint
from desktop_app.batch_chart import BatchChart
from desktop_app.export import ExportError, export_csv, export_json
from desktop_app.palette import SILENCE_COLOR, UNCERTAIN_COLOR, emotion_color, emotion_qcolor, label_text
from desktop_app.player import Player
from desktop_app.profiles import ProfileManager
from desktop_app.settings import AppSettings
from desktop_app.widgets import ColorKey, ProbabilityBars, export_failed_box, min_max_envelope, style_plot
from ser_engine.dsp.audio import AUDIO_EXTENSIONS, find_audio_files, load_audio
from ser_engine.errors import AudioError
from ser_engine.files.analysis import FileResult, Segment, analyze_paths
from ser_engine.files.paths import display_path
from ser_engine.inference.model import EmotionModel
from ser_engine.live.stream import StreamSettings

__all__ = ["COLUMNS", "DRAIN_INTERVAL_MS", "EMPTY_TABLE_TEXT", "AnalysisWorker", "BatchCounts", "FileTable",
           "FileTableModel", "FileView",
           "error_reason", "result_label_text", "timeline_spans", "voiced_timeline"]

log = logging.getLogger("ser.app")

COLUMNS = ("File", "Duration (s)", "Dominant emotion", "Confidence (%)", "Speech (s)", "Status")
DRAIN_INTERVAL_MS = 100  # results from the batch threads are applied to the table this often
EMPTY_TABLE_TEXT = "Drop files or folders here, or Open files…"  # the progress bar of an empty table
_NO_MAXIMUM = 16777215  # Qt's QWIDGETSIZE_MAX (not exported by PySide6): no maximum height


def error_reason(path: Path, message: str) -> str:
    """Return a failed file's error without the file it names: the reason, for the table's Status cell.

    The engine's messages start with the file (``"/data/a.wav: not an audio file (it contains
    text)"``), which the File column already shows and which would push the reason out of a
    narrow cell. A leading path or file name followed by ``": "`` is dropped, repeatedly (a
    message wrapped twice names the file twice); the path is matched as given and as the engine
    writes it (:func:`~ser_engine.files.paths.display_path`, for names that are not UTF-8). A
    message not starting with the file is returned whole, and so is one that would be left empty.
    """
    names = {os.fspath(path), display_path(path), path.name, display_path(path.name)}
    prefixes = sorted((f"{n}: " for n in names if n), key=len, reverse=True)  # the full path before its name
    text = message.strip()
    while True:
        prefix = next((p for p in prefixes if text.startswith(p) and text[len(p):].strip()), None)
        if prefix is None:
            return text or message
        text = text[len(prefix):].lstrip()


def result_label_text(label: str | None, uncertain: bool) -> str:
    """Return the table's emotion text: "Angry", or "uncertain (angry?)" when the model is not sure."""
    if label is None:
        return "no speech"
    return f"uncertain ({label}?)" if uncertain else label_text(label)


class BatchCounts:
    """Finished rows of the file table: analysed with speech (``ok``), ``failed``, ``no_speech``."""

    def __init__(self, ok: int = 0, failed: int = 0, no_speech: int = 0) -> None:
        self.ok, self.failed, self.no_speech = ok, failed, no_speech

    @classmethod
    def of(cls, results: Sequence[FileResult | None]) -> BatchCounts:
        """Count the finished results (None: not analysed yet, not counted)."""
        c = cls()
        for r in results:
            if r is None:
                continue
            if not r.ok:
                c.failed += 1
            elif r.label is None:
                c.no_speech += 1
            else:
                c.ok += 1
        return c

    def text(self) -> str:
        """Return the counts in one line: ``"3 ok · 1 failed · 0 no speech"``."""
        return f"{self.ok} ok · {self.failed} failed · {self.no_speech} no speech"


class AnalysisWorker:
    """Runs one batch through :func:`ser_engine.files.analysis.analyze_paths` on a background (daemon) thread.

    The paths are expanded as ``ser analyze`` does (:func:`~ser_engine.dsp.audio.find_audio_files`:
    problem paths first, as failed results), then the files go through ``analyze_paths`` with
    the same window, hop, gate sensitivity and workers. Nothing here touches Qt: the GUI thread
    polls :meth:`take` on a timer and applies what came in as one model update, so the cost per
    result does not grow with the table. ``cancel()`` only sets the engine's cancel event and
    returns; in-flight files stop at their next window. The thread is a daemon, so closing the
    app never waits on (or aborts over) a file.

    A voice profile is applied by passing the profiled model (``ProfileManager.model_for``).

    Parameters
    ----------
    paths : sequence of Path
        Files and folders (folders are searched recursively).
    model : EmotionModel
        The model (with or without a voice profile) every file is analysed with.
    settings : StreamSettings
        Window, hop and gate sensitivity.
    workers : int or None
        Files analysed in parallel; None for the engine's default (as ``ser analyze``).

    Attributes
    ----------
    error : BaseException or None
        What stopped the batch when it was not a bad file (a bug): the files not analysed
        stay unfinished and the view says so.
    """

    def __init__(self, paths: Sequence[Path], model: EmotionModel, settings: StreamSettings, *,
                 workers: int | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.model = model
        self.stream_settings = settings
        self.workers = workers
        self.cancel_event = threading.Event()
        self.cancelled = False
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._found: list[Path] | None = None
        self._pending: list[tuple[int, FileResult]] = []
        self._done = threading.Event()
        self._main = threading.Thread(target=self._run, name="ser-file-batch", daemon=True)

    # -------------------------------------------------------------- control (any thread)
    def start(self) -> None:
        """Start the batch thread."""
        self._main.start()

    def cancel(self) -> None:
        """Ask the batch to stop; returns at once (the threads finish in the background)."""
        self.cancel_event.set()

    @property
    def done(self) -> bool:
        """True once the batch has finished."""
        return self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the batch to finish; True if it did within ``timeout_s``."""
        return self._done.wait(timeout_s)

    def take(self) -> tuple[list[Path] | None, list[tuple[int, FileResult]]]:
        """Return the expanded path list (once, then None) and the results that arrived since the last call."""
        with self._lock:
            found, self._found = self._found, None
            pending, self._pending = self._pending, []
        return found, pending

    # -------------------------------------------------------------- background
    def _put(self, index: int, res: FileResult) -> None:
        with self._lock:
            self._pending.append((index, res))

    def _run(self) -> None:
        s = self.stream_settings
        try:
            files, problems = find_audio_files(self.paths)
            with self._lock:
                self._found = [p for p, _ in problems] + list(files)
            for i, (p, msg) in enumerate(problems):
                self._put(i, FileResult(path=p, ok=False, error=msg))
            results = analyze_paths(files, self.model, window_s=s.window_s, hop_s=s.hop_s,
                                    gate_sensitivity=s.gate_sensitivity, workers=self.workers,
                                    cancel=self.cancel_event, expand=False)
            for i, res in enumerate(results, start=len(problems)):
                if self.cancel_event.is_set():
                    break
                self._put(i, res)
        except Exception as exc:  # a bug, not a bad file: reported by the view, traceback in the log
            log.exception("file analysis stopped")
            self.error = exc
        finally:
            # (the engine also sets cancel_event to stop the files in flight after a bug)
            self.cancelled = self.error is None and self.cancel_event.is_set()
            self._done.set()


class FileTableModel(QAbstractTableModel):
    """The file table's rows, read from the view's ``paths``/``results``/``row_profiles`` lists.

    Rows are added with :meth:`append_rows` (one ``beginInsertRows`` per batch) and refreshed
    with :meth:`rows_changed` (one ``dataChanged`` per range), so an update costs the same
    whatever the length of the table.
    """

    def __init__(self, view: FileView) -> None:
        super().__init__(view)
        self._view = view

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Return the number of files (Qt's model API)."""
        return 0 if parent.isValid() else len(self._view.paths)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Return the number of columns (Qt's model API)."""
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Return the column titles (Qt's model API)."""
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def append_rows(self, paths: Sequence[Path], profile: str | None) -> None:
        """Add queued rows for ``paths`` (analysed with voice ``profile``) in one insertion."""
        if not paths:
            return
        v = self._view
        first = len(v.paths)
        self.beginInsertRows(QModelIndex(), first, first + len(paths) - 1)
        v.paths.extend(paths)
        v.results.extend([None] * len(paths))
        v.row_profiles.extend([profile] * len(paths))
        self.endInsertRows()

    def rows_changed(self, first: int, last: int) -> None:
        """Rows ``first..last`` (inclusive) have new results: one repaint of the visible ones."""
        if last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))

    def clear(self) -> None:
        """Remove every row."""
        v = self._view
        self.beginResetModel()
        v.paths.clear()
        v.results.clear()
        v.row_profiles.clear()
        self.endResetModel()

    def cell(self, row: int, col: int) -> tuple[str, QColor | None, str]:
        """(text, foreground colour or None, tool tip) of one cell."""
        v = self._view
        path = v.paths[row]
        res = v.results[row]
        if col == 0:
            tip = str(path) if res is None or res.ok else f"{path}\n{res.error or 'failed'}"
            return path.name, None, tip
        profile = v.row_profiles[row] if row < len(v.row_profiles) else None
        warning = _warning(res)
        if res is None:
            cells = ["", "", "", "", "queued"]
        elif not res.ok:  # the reason only: the file is in the File column, the full message in the tooltip
            reason = error_reason(path, res.error or "failed")
            cells = [f"{res.duration_s:.2f}" if res.duration_s else "", "", "", "", f"error: {reason}"]
        elif res.label is None:
            cells = [f"{res.duration_s:.2f}", "no speech", "", f"{res.speech_s:.2f}", "ok"]
        else:
            conf = "" if res.confidence is None else f"{res.confidence * 100:.0f}"
            cells = [f"{res.duration_s:.2f}", result_label_text(res.label, res.uncertain), conf,
                     f"{res.speech_s:.2f}", "ok"]
        text = cells[col - 1]
        colour: QColor | None = None
        tip = "" if res is None or res.ok else (res.error or "failed")  # the full error on hover, any column
        if col == 5 and res is not None:
            if not res.ok:
                colour, tip = emotion_qcolor("angry"), res.error or ""
            else:
                if profile:
                    text = f"ok (voice profile: {profile})"
                if warning:
                    text = f"{text}, partial: {warning}"
                    colour, tip = QColor(UNCERTAIN_COLOR), warning
        if col == 2 and res is not None and res.label is not None:
            colour = QColor(UNCERTAIN_COLOR) if res.uncertain else emotion_qcolor(res.label)
            if res.uncertain:
                tip = (f"The model is not sure: its top emotion, {res.label}, has only "
                       f"{(res.confidence or 0) * 100:.0f} %")
        return text, colour, tip

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Return a cell's text, colour, tooltip or alignment (Qt's model API)."""
        if not index.isValid() or not 0 <= index.row() < len(self._view.paths):
            return None
        col = index.column()
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if col in (1, 3, 4):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.ToolTipRole):
            return None
        text, colour, tip = self.cell(index.row(), col)
        if role == Qt.ItemDataRole.DisplayRole:
            return text
        if role == Qt.ItemDataRole.ForegroundRole:
            return None if colour is None else QBrush(colour)
        return tip or None


def _warning(res: FileResult | None) -> str | None:
    """Return the engine's partial-decode note for a result (``FileResult.warning``), if any."""
    w = getattr(res, "warning", None) if res is not None else None
    return str(w) if w else None


class _Cell:
    """A read-only view of one table cell (``text()``, ``foreground()``, ``toolTip()``)."""

    def __init__(self, text: str, colour: QColor | None, tip: str) -> None:
        self._text, self._colour, self._tip = text, colour, tip

    def text(self) -> str:
        return self._text

    def foreground(self) -> QBrush:
        return QBrush(self._colour) if self._colour is not None else QBrush()

    def toolTip(self) -> str:
        return self._tip


class FileTable(QTableView):
    """The file table: a view on :class:`FileTableModel` with QTableWidget-like accessors."""

    def file_model(self) -> FileTableModel:
        """Return the table's model."""
        m = self.model()
        assert isinstance(m, FileTableModel)
        return m

    def rowCount(self) -> int:
        """Return the number of rows."""
        return self.file_model().rowCount()

    def currentRow(self) -> int:
        """Return the current row (-1: none)."""
        idx = self.currentIndex()
        return idx.row() if idx.isValid() else -1

    def item(self, row: int, col: int) -> _Cell | None:
        """Return one cell's text, colour and tooltip (None outside the table)."""
        m = self.file_model()
        if not (0 <= row < m.rowCount() and 0 <= col < len(COLUMNS)):
            return None
        return _Cell(*m.cell(row, col))

    def horizontalHeaderItem(self, col: int) -> _Cell | None:
        """Return a column's title (None outside the table)."""
        return _Cell(COLUMNS[col], None, "") if 0 <= col < len(COLUMNS) else None


class _LoadSignals(QObject):
    done = Signal(object, object, object)  # path, samples or None, error message or None


class _LoadTask(QRunnable):
    def __init__(self, path: Path, rate: int, signals: _LoadSignals) -> None:
        super().__init__()
        self.path, self.rate, self.signals = path, rate, signals

    def run(self) -> None:
        try:
            clip = load_audio(self.path, sample_rate=self.rate)
        except AudioError as exc:  # bad audio: the message names the file
            self.signals.done.emit(self.path, None, str(exc))
        except Exception as exc:  # a bug: said in the window, traceback in the log (the pool thread goes on)
            log.exception("loading %s for the waveform failed", self.path)
            self.signals.done.emit(self.path, None, bug_message(exc))
        else:
            self.signals.done.emit(self.path, clip.samples, None)


def timeline_spans(segments: Sequence[Segment], duration_s: float) -> list[tuple[float, float, Segment]]:
    """Non-overlapping spans for overlapping analysis windows.

    Each window owns the time nearest its centre: boundaries are the midpoints
    between consecutive window centres; the first span starts at the first
    window's start and the last ends at the end of the file (the last window
    ends within one frame of it, or past it for a clip shorter than a window).
    """
    segs = sorted(segments, key=lambda s: (s.start_s + s.end_s) / 2)
    if not segs:
        return []
    centres = [(s.start_s + s.end_s) / 2 for s in segs]
    out: list[tuple[float, float, Segment]] = []
    for i, s in enumerate(segs):
        a = s.start_s if i == 0 else (centres[i - 1] + centres[i]) / 2
        b = duration_s if i == len(segs) - 1 else (centres[i] + centres[i + 1]) / 2
        if b > a:
            out.append((a, b, s))
    return out


def voiced_timeline(segments: Sequence[Segment], duration_s: float,
                    speech_spans: Sequence[tuple[float, float]]) -> list[tuple[float, float, Segment | None]]:
    """Build the file timeline: each window's emotion only where the voice is, ``None`` (no speech) elsewhere.

    The windows' spans (:func:`timeline_spans`) are cut at the edges of ``speech_spans`` (the
    gate's voiced time, :attr:`FileResult.speech_spans`): a silent lead-in or pause inside a
    speech window is shown as no speech, not coloured with the window's emotion.

    Returns
    -------
    list of (start_s, end_s, Segment or None)
        Contiguous pieces from the first window's start to the end of the file.
    """
    out: list[tuple[float, float, Segment | None]] = []

    def add(a: float, b: float, seg: Segment | None) -> None:
        if b <= a:
            return
        if out and out[-1][2] is seg and abs(out[-1][1] - a) < 1e-9:
            out[-1] = (out[-1][0], b, seg)
        else:
            out.append((a, b, seg))

    voiced = sorted(speech_spans)
    for a, b, seg in timeline_spans(segments, duration_s):
        if not (seg.speech and seg.label is not None):
            add(a, b, None)
            continue
        t = a
        for va, vb in voiced:
            lo, hi = max(va, a), min(vb, b)
            if hi <= lo:
                continue
            add(t, lo, None)
            add(lo, hi, seg)
            t = hi
        add(t, b, None)
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
        if model is not None:
            settings.use_model_defaults(model)  # window and hop: the model's, as in `ser`
        if profiles is None and model is not None:
            profiles = ProfileManager(settings=settings, model=model, parent=self)
        self.profiles = profiles
        self.row_profiles: list[str | None] = []  # the voice profile each row was analysed with
        self.labels = tuple(model.labels) if model is not None else ()
        self.affect_names = tuple(model.affect_names) if model is not None else ()  # () hides the affect timeline
        self.rate = model.feature_config.sample_rate if model is not None else 16000
        self.results: list[FileResult | None] = []
        self.paths: list[Path] = []
        self.worker: AnalysisWorker | None = None
        self.workers: int | None = None  # files analysed in parallel (None: as `ser analyze`)
        self.retired_workers: list[AnalysisWorker] = []  # cancelled batches still finishing in the background
        self.export_error_box: QMessageBox | None = None
        self._queue: list[Path] = []
        self._batch_offset = 0
        self._batch_profile: str | None = None
        self._n_done = 0
        self.drain_timer = QTimer(self)
        self.drain_timer.setInterval(DRAIN_INTERVAL_MS)
        self.drain_timer.timeout.connect(self._drain)
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
        # Top to bottom: the tool bar, the drop hint (beside the voice-profile box), the last batch's
        # outcome, then a splitter with the file table above the detail tabs. The detail tabs fold
        # to their tab bar while they have nothing to show (no file selected, the batch chart not
        # chosen), so the table gets the height.
        root = QVBoxLayout(self)
        self._build_tool_bar(root=root)
        self._build_hint_row(root=root)
        self._build_outcome_row(root=root)
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(self._build_table())
        self.split.addWidget(self._build_detail_tabs())
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 3)
        self._open_sizes = [260, 520]  # the splitter's sizes when the detail opens (the user's once dragged)
        self.split.setSizes(self._open_sizes)
        self.detail_open = True
        root.addWidget(self.split, 1)
        self._fit_detail()
        self._update_buttons()

    def _fit_detail(self) -> None:
        """Open the detail tabs when a file is selected or the batch chart is chosen; else fold them.

        Folded, the tabs keep only their tab bar (the batch chart stays one click away) and the
        table takes the rest of the height; opened, the splitter gets back the sizes it had.
        """
        want = self.table.selectionModel().hasSelection() or self.detail_tabs.currentWidget() is self.batch_chart
        if want == self.detail_open:
            return
        self.detail_open = want
        tabs = self.detail_tabs
        handle = self.split.handle(1)
        if want:
            tabs.setMaximumHeight(_NO_MAXIMUM)
            handle.setEnabled(True)
            self.split.setSizes(self._open_sizes)
        else:
            sizes = self.split.sizes()
            if len(sizes) == 2 and min(sizes) > 0:
                self._open_sizes = sizes
            tabs.setMaximumHeight(tabs.tabBar().sizeHint().height())
            handle.setEnabled(False)  # nothing to drag open: selecting a file opens the detail

    def _build_tool_bar(self, *, root: QVBoxLayout) -> None:
        """Add the Open, Cancel, Export and Clear buttons around the batch progress bar."""
        bar = QHBoxLayout()
        self.open_files_button = QPushButton("Open files…")
        self.open_files_button.clicked.connect(self._choose_files)
        self.open_folder_button = QPushButton("Open folder…")
        self.open_folder_button.clicked.connect(self._choose_folder)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setValue(0)
        self.progress.setMaximum(1)
        self._set_progress_format()
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

    def _build_hint_row(self, *, root: QVBoxLayout) -> None:
        """Add the drop hint (the readable extensions) and the "Use voice profile" box."""
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

    def _build_outcome_row(self, *, root: QVBoxLayout) -> None:
        """Add the last batch's outcome and the "Show failed only" box."""
        # the outcome stays here (the status bar message fades after 8 s)
        summary_row = QHBoxLayout()
        self.batch_summary = QLabel("")
        self.batch_summary.setObjectName("batch_summary")
        self.batch_summary.setVisible(False)
        summary_row.addWidget(self.batch_summary, 1)
        self.failed_only_box = QCheckBox("Show failed only")
        self.failed_only_box.setToolTip("Hide the rows that were analysed; hover a failed row for the full error")
        self.failed_only_box.setEnabled(False)
        self.failed_only_box.toggled.connect(lambda _checked: self._apply_filter())
        summary_row.addWidget(self.failed_only_box)
        root.addLayout(summary_row)

    def _build_table(self) -> FileTable:
        """Make the file table, its columns sized once from the header texts."""
        self.table = FileTable()
        self.table_model = FileTableModel(self)
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        hdr = self.table.horizontalHeader()
        # fixed widths from the header texts: no ResizeToContents (it re-measures every row on each change)
        fm = self.table.fontMetrics()
        for col in range(0, 5):
            hdr.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        for col, sample in ((1, "00000.00"), (2, "uncertain (surprised?)"), (3, "100"), (4, "00000.00")):
            width = max(fm.horizontalAdvance(COLUMNS[col]), fm.horizontalAdvance(sample)) + 24
            self.table.setColumnWidth(col, width)
        # the Status column takes the rest of the width: a failed file's reason must be readable there
        hdr.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 280)  # about 40 characters of file name (the full path is its tooltip)
        vh = self.table.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(fm.height() + 8)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        return self.table

    def _build_detail_tabs(self) -> QTabWidget:
        """Make the tabs under the table: the selected file (plots and side panel) and the batch chart."""
        detail = QWidget()
        dl = QHBoxLayout(detail)
        dl.addLayout(self._build_plots(), 3)
        dl.addLayout(self._build_side_panel(), 2)
        self.batch_chart = BatchChart(self.labels, folder=lambda: self.settings.last_folder,
                                      uncertainty_threshold=self.model.metadata.uncertainty_threshold
                                      if self.model is not None else None)
        self.batch_chart.message.connect(self.message)
        self.detail_tabs = QTabWidget()  # the selected file, or the batch summary chart
        self.detail_tabs.addTab(detail, "Selected file")
        self.detail_tabs.setTabToolTip(0, "Select a file in the table to see its waveform and emotion timeline")
        self.detail_tabs.addTab(self.batch_chart, "Batch summary")
        self.table.clicked.connect(lambda _index: self.detail_tabs.setCurrentIndex(0))
        self.detail_tabs.currentChanged.connect(lambda _index: self._fit_detail())
        return self.detail_tabs

    def _build_plots(self) -> QVBoxLayout:
        """Make the selected file's waveform and emotion timeline (x-linked, each with a playhead)."""
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
        self._build_affect_timeline(plots=plots)
        return plots

    def _build_affect_timeline(self, *, plots: QVBoxLayout) -> None:
        """Add the file's arousal/valence per window under its emotion timeline (a model with affect only)."""
        self.affect_plot = pg.PlotWidget()
        ap = self.affect_plot.getPlotItem()
        style_plot(ap, left="score", left_units="%", bottom="time", bottom_units="s")
        ap.setTitle(affect_title_html(self.affect_names, what=" per window", short=True), size="12pt")
        ap.setYRange(0, 100, padding=0.02)
        ap.getAxis("left").setTicks([[(v, f"{v}") for v in (0, 50, 100)], [(v, "") for v in (25, 75)]])
        ap.setMouseEnabled(x=True, y=False)
        ap.setXLink(self.wave_plot.getPlotItem())
        ap.addItem(pg.InfiniteLine(pos=50, angle=0, pen=pg.mkPen("#808080", width=1, style=Qt.PenStyle.DashLine)))
        self.affect_curves = {
            name: ap.plot(pen=pg.mkPen(affect_axis(name, index=i).color, width=2.5), connect="finite")
            for i, name in enumerate(self.affect_names)
        }
        self.affect_playhead = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#FFFFFF", width=2))
        self.affect_playhead.setVisible(False)
        ap.addItem(self.affect_playhead)
        self.affect_plot.setMinimumHeight(90)
        plots.addWidget(self.affect_plot, 2)
        self.affect_plot.setVisible(bool(self.affect_names))
        if self.affect_names:  # three plots share the height: the waveform gives up some
            plots.setStretchFactor(self.wave_plot, 2)

    def _build_side_panel(self) -> QVBoxLayout:
        """Make the selected file's summary, its emotion distribution and the Play button."""
        side = QVBoxLayout()
        self.summary = QLabel("Open or drop audio files to analyse them.")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-size:15pt;")
        self.summary.setMinimumWidth(320)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # errors can be copied
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
        return side

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
        """Accept dragged files (Qt's event handler)."""
        if event.mimeData().hasUrls() and self.model is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Analyse the dropped files and folders (Qt's event handler)."""
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
        """Return the name of the live view's active voice profile (None: none)."""
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
        """Return the model a new batch uses and the name of the voice profile applied (None: uncalibrated)."""
        assert self.model is not None
        if self.profiles is None or not self.settings.files_use_profile:
            return self.model, None
        name = self.active_profile_name()
        return self.profiles.model_for(use_profile=True), name

    def _start_worker(self, paths: list[Path]) -> None:
        assert self.model is not None
        self._batch_offset = len(self.results)
        model, self._batch_profile = self.analysis_model()
        worker = AnalysisWorker(paths, model, self.settings.stream_settings, workers=self.workers)
        self.worker = worker
        self.progress.setValue(self._n_done)
        self._update_buttons()
        self.message.emit("Analysing…")
        worker.start()
        self.drain_timer.start()

    # ------------------------------------------------------------------ results (GUI thread)
    @Slot()
    def _drain(self) -> None:
        """Apply what the batch threads produced since the last tick as one model update."""
        self.retired_workers = [w for w in self.retired_workers if not w.done]
        worker = self.worker
        if worker is None:
            if not self.retired_workers:
                self.drain_timer.stop()
            return
        finished = worker.done  # read before take(): nothing can arrive after a finished batch
        found, pending = worker.take()
        if found is not None:
            n_before = len(self.results)
            self.table_model.append_rows(found, self._batch_profile)
            self.progress.setMaximum(max(1, len(self.results)))
            self._set_progress_format()
            self._apply_filter(n_before, len(self.results) - 1)
        if pending:
            first, last = len(self.results), -1
            show_current = False
            current = self.table.currentRow()
            for index, res in pending:
                row = self._batch_offset + index
                if self.results[row] is None:
                    self._n_done += 1
                self.results[row] = res
                first, last = min(first, row), max(last, row)
                show_current = show_current or row == current
            self.table_model.rows_changed(first, last)
            self._apply_filter(first, last)
            self.progress.setValue(self._n_done)
            if current < 0:  # nothing chosen yet: a one-line progress note (the plots wait for a choice)
                self.summary.setText(f"Analysing: {self._n_done} of {len(self.results)} files…")
            elif show_current:
                self._show_result(current)
        if found is not None or pending:
            self.batch_chart.set_results(self.results, partial=True)  # counted only if shown
        if finished:
            self._finish_batch(worker, cancelled=worker.cancelled)

    def _finish_batch(self, worker: AnalysisWorker, *, cancelled: bool) -> None:
        """End of a batch (finished, or cancelled by the user): report it and start the next."""
        self.worker = None
        stopped = worker.error
        if cancelled or stopped is not None:
            why = "cancelled" if stopped is None else f"not analysed: the batch stopped ({type(stopped).__name__}: " \
                                                      f"{stopped})"
            first = len(self.results)
            for row in range(self._batch_offset, len(self.results)):
                if self.results[row] is None:
                    p = self.paths[row]
                    self.results[row] = FileResult(path=p, ok=False, error=f"{p}: {why}")
                    self._n_done += 1
                    first = min(first, row)
            self.table_model.rows_changed(first, len(self.results) - 1)
            self._apply_filter(first, len(self.results) - 1)
            self.progress.setValue(self._n_done)
            self._queue.clear()
            if not worker.done:
                self.retired_workers.append(worker)
        n_ok = sum(1 for r in self.results if r is not None and r.ok)
        n_bad = sum(1 for r in self.results if r is not None and not r.ok)
        counts = self.batch_counts()
        self.batch_chart.set_results(self.results)
        state = "stopped by an internal error" if stopped is not None else "cancelled" if cancelled else "finished"
        self.message.emit(f"Analysis {state}: {counts.text()}")
        self._show_batch_summary(counts, cancelled=cancelled, error=stopped)
        self._update_buttons()
        cur = self.table.currentRow()
        if 0 <= cur < len(self.results):
            self._show_result(cur)
        else:  # show the first result of the batch that has one (not during it: plots cost GUI time)
            ok_rows = [row for row in range(self._batch_offset, len(self.results))
                       if (r := self.results[row]) is not None and r.ok]
            if ok_rows:
                self.table.selectRow(ok_rows[0])
            elif self.results:
                self.summary.setText(f"{n_ok} of {len(self.results)} files analysed, {n_bad} failed.")
        self.batch_finished.emit(cancelled)
        if self._queue:
            paths, self._queue = self._queue, []
            self._start_worker(paths)

    # ------------------------------------------------------------------ detail
    def _selection_changed(self, *_args: object) -> None:
        self._fit_detail()
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
            self.summary.setText(f"<b>{html.escape(path.name)}</b><br>could not be analysed:<br>"
                                 f"<span style='color:{emotion_color('angry')}'>"
                                 f"{html.escape(res.error or 'unknown error')}</span>")
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
        if res.label is not None and self.affect_names:  # "arousal: activated (0.82) · valence: ..."
            text += "<br>" + " · ".join(
                f"<span style='color:{affect_axis(k, index=i).color}'>{affect_axis(k, index=i).title}</span>: "
                f"{lean_text(res.affect.get(k), axis=affect_axis(k, index=i))}"
                + (f" ({res.affect[k]:.2f})" if k in res.affect else "")
                for i, k in enumerate(self.affect_names))
        if res.label is not None and row < len(self.row_profiles) and self.row_profiles[row]:
            text += f"<br><span style='color:#909090'>voice profile: {self.row_profiles[row]}</span>"
        warning = _warning(res)
        if warning:
            text += f"<br><span style='color:{UNCERTAIN_COLOR}'>partial result: {html.escape(warning)}</span>"
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
        spans = voiced_timeline(res.segments, res.duration_s, res.speech_spans)
        self.timeline_spans = spans
        for name, curve in self.affect_curves.items():
            curve.setData(*segment_affect_curve(spans, name=name))
        if not spans:
            return
        x0 = np.array([a for a, _, _ in spans])
        width = np.array([b - a for a, b, _ in spans])
        heights = []
        brushes = []
        for _, _, s in spans:
            if s is not None and s.label is not None:
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
        """Play the shown file from ``t_s`` seconds (a problem is said in the status bar)."""
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
        for line in (self.playhead, self.timeline_playhead, self.affect_playhead):
            line.setVisible(True)
            line.setValue(t)
        self.play_label.setText(f"{t:5.1f} s / {self.player.duration_s:.1f} s")
        if not self.player.playing:
            self.play_timer.stop()
            self._set_play_button()

    # ------------------------------------------------------------------ batch control
    def cancel(self) -> None:
        """Stop the batch now: set the engine's cancel event and return at once.

        What already came in is kept; the files not finished are marked cancelled; the
        threads end in the background (:attr:`retired_workers` until they do).
        """
        worker = self.worker
        if worker is None:
            return
        worker.cancel()
        self._queue.clear()
        self._drain()  # keep every result that arrived before the cancel
        if self.worker is worker:
            self._finish_batch(worker, cancelled=True)

    def clear(self) -> None:
        """Empty the table (not while a batch runs)."""
        if self.worker is not None:
            return
        self.player.stop()
        self.table_model.clear()  # (the selection goes without a selectionChanged signal)
        self._fit_detail()
        self._n_done = 0
        self.progress.setValue(0)
        self.progress.setMaximum(1)
        self._set_progress_format()
        self.batch_summary.setText("")
        self.batch_summary.setVisible(False)
        self.failed_only_box.setChecked(False)
        self.batch_chart.set_results(self.results)
        self.failed_only_box.setEnabled(False)
        self.summary.setText("Open or drop audio files to analyse them.")
        self.distribution.set_probabilities(None)
        self.wave_curve.setData([], [])
        if self.timeline_bars is not None:
            self.timeline_plot.getPlotItem().removeItem(self.timeline_bars)
            self.timeline_bars = None
        for curve in self.affect_curves.values():
            curve.setData([], [])
        self.loaded_path, self.loaded_samples = None, None
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.worker is not None
        self.cancel_button.setEnabled(busy)
        have = any(r is not None for r in self.results)
        self.export_csv_button.setEnabled(have and not busy)
        self.export_json_button.setEnabled(have and not busy)
        self.clear_button.setEnabled(have and not busy)

    # ------------------------------------------------------------------ batch summary and filter
    def batch_counts(self) -> BatchCounts:
        """Count the finished rows of the table (all batches since the last Clear)."""
        return BatchCounts.of(self.results)

    def _show_batch_summary(self, counts: BatchCounts, *, cancelled: bool, error: BaseException | None = None) -> None:
        """Show the persistent line above the table: what the batch gave (until the next batch or Clear)."""
        head = "Analysis cancelled" if cancelled else "Analysis finished"
        if error is not None:
            head = (f"Analysis stopped by an internal error ({html.escape(type(error).__name__)}: "
                    f"{html.escape(str(error))}; {html.escape(details_hint())})")
        n = len(self.results)
        bad = (f"<span style='color:{emotion_color('angry')}; font-weight:bold;'>{counts.failed} failed</span>"
               if counts.failed else "0 failed")
        self.batch_summary.setText(f"<b>{head}</b> ({n} file{'s' if n != 1 else ''}): {counts.ok} ok · {bad} · "
                                   f"{counts.no_speech} no speech")
        self.batch_summary.setToolTip(counts.text())
        self.batch_summary.setVisible(True)
        self.failed_only_box.setEnabled(counts.failed > 0 or self.failed_only_box.isChecked())

    def _apply_filter(self, first: int = 0, last: int | None = None) -> None:
        """Hide rows ``first..last`` that did not fail while "Show failed only" is checked."""
        last = len(self.results) - 1 if last is None else last
        only_failed = self.failed_only_box.isChecked()
        if not only_failed and first == 0 and last == len(self.results) - 1:
            for row in range(first, last + 1):
                if self.table.isRowHidden(row):
                    self.table.setRowHidden(row, False)
            return
        if not only_failed:
            return
        for row in range(first, last + 1):
            r = self.results[row]
            self.table.setRowHidden(row, r is None or r.ok)

    def visible_rows(self) -> list[int]:
        """Return the rows the table shows (all, or the failed ones under "Show failed only")."""
        return [row for row in range(len(self.results)) if not self.table.isRowHidden(row)]

    def _set_progress_format(self) -> None:
        """Make an empty table say what to do instead of "0 / 1 files"."""
        self.progress.setFormat(EMPTY_TABLE_TEXT if not self.paths else "%v / %m files")

    @property
    def busy(self) -> bool:
        """Whether a batch is running."""
        return self.worker is not None

    # ------------------------------------------------------------------ export
    def finished_results(self) -> list[FileResult]:
        """Return the results of every finished row, in table order."""
        return [r for r in self.results if r is not None]

    def export_csv(self, path: Path) -> tuple[Path, Path]:
        """Write the finished results as CSV (see :func:`desktop_app.export.export_csv`)."""
        return export_csv(self.finished_results(), path, labels=self.labels, affect=self.affect_names)

    def export_json(self, path: Path) -> Path:
        """Write the finished results as JSON (see :func:`desktop_app.export.export_json`)."""
        return export_json(self.finished_results(), path, labels=self.labels, affect=self.affect_names)

    def _choose_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export table and timeline as CSV",
                                              os.path.join(self.settings.last_folder, "ser-analysis.csv"),
                                              "CSV (*.csv)")
        if path:
            self.save_csv(Path(path))

    def _choose_export_json(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export results as JSON",
                                              os.path.join(self.settings.last_folder, "ser-analysis.json"),
                                              "JSON (*.json)")
        if path:
            self.save_json(Path(path))

    def save_csv(self, path: Path) -> bool:
        """Export the table and timeline CSVs (atomically); on failure say why. True when written."""
        try:
            table, segs = self.export_csv(Path(path))
        except ExportError as exc:
            self._export_failed(exc)
            return False
        self.message.emit(f"Exported {table} and {segs}")
        return True

    def save_json(self, path: Path) -> bool:
        """Export the results as JSON (atomically); on failure say why. True when written."""
        try:
            out = self.export_json(Path(path))
        except ExportError as exc:
            self._export_failed(exc)
            return False
        self.message.emit(f"Exported {out}")
        return True

    def _export_failed(self, exc: ExportError) -> None:
        """Status text and a (window-modal, non-blocking) message box naming the file and the reason."""
        self.message.emit(str(exc))
        self.export_error_box = export_failed_box(self, str(exc))

    def shutdown(self, *, timeout_s: float = 2.0) -> None:
        """Stop playback and any batch; waits at most ``timeout_s`` for the batch threads (daemons)."""
        self.player.stop()
        self.play_timer.stop()
        self.drain_timer.stop()
        workers = [*self.retired_workers, *([self.worker] if self.worker is not None else [])]
        for w in workers:
            w.cancel()
        deadline = time.monotonic() + timeout_s
        for w in workers:
            w.wait(max(0.0, deadline - time.monotonic()))
        self._pool.waitForDone(int(max(0.0, deadline - time.monotonic()) * 1000) + 100)
