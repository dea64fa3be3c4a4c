"""The Files tab's batch summary: dominant emotions across the files and a histogram of confidence.

:func:`summarize_batch` counts (no Qt) what the file table shows: each analysed file's
dominant emotion as the table's "Dominant emotion" column labels it (a confident emotion,
``uncertain (…?)`` counted as *Uncertain*, ``no speech``), the failed files, and the
confidences of the files with speech in bins over [0, 1] (:func:`confidence_bin_edges`: the
model's uncertainty threshold is a bin edge, so no bar straddles its line). :class:`BatchChart` draws it in
two panels in the app's dark theme and palette, and exports the panels as a PNG, written
atomically and privately like the CSV and JSON exports (:mod:`desktop_app.export`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from desktop_app.export import ExportError
from desktop_app.palette import SILENCE_COLOR, UNCERTAIN_COLOR, emotion_color, label_text
from desktop_app.widgets import export_failed_box, style_plot
from ser_engine.files.analysis import FileResult
from ser_engine.files.export import safe_text
from ser_engine.live.recorder import make_private_folder

__all__ = ["CONFIDENCE_BINS", "DEFAULT_PNG_NAME", "FAILED", "NO_SPEECH", "UNCERTAIN", "BatchChart", "BatchSummary",
           "atomic_write_bytes", "confidence_bin_edges", "summarize_batch"]

CONFIDENCE_BINS = 10  # histogram bins over [0, 1] (about as many when the threshold is an edge)
BAR_FILL = 0.92  # a histogram bar's share of its bin: the rest is a gap, split on both sides
DEFAULT_PNG_NAME = "batch_summary.png"
UNCERTAIN, NO_SPEECH, FAILED = "Uncertain", "No speech", "Failed"  # the chart's categories after the emotions
HISTOGRAM_COLOR = "#6C8EBF"  # not an emotion colour: confidence is not an emotion


@dataclass(frozen=True)
class BatchSummary:
    """What a batch gave, counted as the file table shows it.

    Attributes
    ----------
    labels : tuple of str
        The emotions, in the model's order (then any other label a result carried).
    emotions : dict
        Files whose dominant emotion is confident, per label (every label present, zeros too).
    uncertain : int
        Files with speech whose top emotion is below the model's uncertainty threshold.
    no_speech : int
        Files analysed without finding speech.
    failed : int
        Files that could not be analysed (including cancelled ones).
    pending : int
        Rows still waiting for their result.
    confidence_counts : tuple of int
        Files with speech (confident and uncertain) per confidence bin.
    bin_edges : tuple of float
        ``len(confidence_counts) + 1`` increasing edges from 0 to 1 (:func:`confidence_bin_edges`);
        each bin holds ``left <= confidence < right``, the last one 1 as well.
    """

    labels: tuple[str, ...]
    emotions: dict[str, int]
    uncertain: int
    no_speech: int
    failed: int
    pending: int
    confidence_counts: tuple[int, ...]
    bin_edges: tuple[float, ...]

    @property
    def ok(self) -> int:
        """Files analysed with speech (the batch summary line's "ok")."""
        return sum(self.emotions.values()) + self.uncertain

    @property
    def finished(self) -> int:
        """Files with a result."""
        return self.ok + self.no_speech + self.failed

    def categories(self) -> list[tuple[str, int]]:
        """Return the bar chart's rows: (text, files) per emotion, then Uncertain, No speech, Failed."""
        rows = [(label_text(lab), self.emotions[lab]) for lab in self.labels]
        return [*rows, (UNCERTAIN, self.uncertain), (NO_SPEECH, self.no_speech), (FAILED, self.failed)]


def confidence_bin_edges(threshold: float | None = None, bins: int = CONFIDENCE_BINS) -> tuple[float, ...]:
    """Return the confidence histogram's bin edges over [0, 1], the uncertainty threshold among them.

    A result is uncertain when its confidence is below the threshold, so a bin across the
    threshold would mix uncertain and confident files in one bar, drawn across the threshold's
    line. [0, threshold] and [threshold, 1] are each cut into equal bins, as many as fit at
    about ``1 / bins`` wide (at least one each): the bins are nearly as wide as each other
    and the bars left of the line count exactly the uncertain files. A threshold on the
    ``1 / bins`` grid gives that grid.

    Parameters
    ----------
    threshold : float or None
        The model's uncertainty threshold; None, or a value outside (0, 1), for ``bins`` equal bins.
    bins : int
        About how many bins (the bin width is about ``1 / bins``).

    Returns
    -------
    tuple of float
        Increasing edges from 0.0 to 1.0, ``threshold`` exactly one of them when it is in (0, 1).
    """
    # each edge computed on its own (i / n, not a running sum): 0.3 is 3 / 10, exactly as typed
    if threshold is None or not 0.0 < threshold < 1.0:
        return tuple(i / bins for i in range(bins + 1))
    t = float(threshold)
    below = max(1, round(t * bins))
    above = max(1, round((1.0 - t) * bins))
    return (*(t * i / below for i in range(below)), t, *(t + (1.0 - t) * i / above for i in range(1, above)), 1.0)


def summarize_batch(results: Sequence[FileResult | None], labels: Sequence[str] = (), *,
                    bins: int = CONFIDENCE_BINS, threshold: float | None = None) -> BatchSummary:
    """Count a batch's results as the file table shows them.

    Parameters
    ----------
    results : sequence of FileResult or None
        The table's rows (None: not analysed yet).
    labels : sequence of str
        The model's emotions, in order; a label met in ``results`` but not listed is added after them.
    bins : int
        About how many confidence histogram bins over [0, 1] (see :func:`confidence_bin_edges`).
    threshold : float or None
        The model's uncertainty threshold: a bin edge, so no bin holds files on both sides of it.

    Returns
    -------
    BatchSummary
    """
    labs = list(labels)
    emotions = dict.fromkeys(labs, 0)
    edges = confidence_bin_edges(threshold, bins)
    confidences: list[float] = []
    uncertain = no_speech = failed = pending = 0
    for r in results:
        if r is None:
            pending += 1
        elif not r.ok:
            failed += 1
        elif r.label is None:
            no_speech += 1
        else:
            if r.uncertain:
                uncertain += 1
            else:
                if r.label not in emotions:
                    labs.append(r.label)
                    emotions[r.label] = 0
                emotions[r.label] += 1
            confidences.append(min(max(float(r.confidence or 0.0), 0.0), 1.0))
    n_bins = len(edges) - 1
    # bin i holds edges[i] <= confidence < edges[i + 1]; a confidence of 1 goes in the last bin
    index = np.clip(np.searchsorted(edges, np.asarray(confidences, dtype=float), side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    return BatchSummary(labels=tuple(labs), emotions=emotions, uncertain=uncertain, no_speech=no_speech,
                        failed=failed, pending=pending, confidence_counts=tuple(int(c) for c in counts),
                        bin_edges=edges)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and privately, as :mod:`desktop_app.export` writes text.

    A private temporary file beside ``path`` (0600 minus the umask) is written, fsynced and
    renamed over ``path``; folders it creates are 0700.

    Raises
    ------
    ExportError
        The file could not be written; any earlier file at ``path`` is unchanged and no
        temporary file is left behind.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        make_private_folder(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except (OSError, ValueError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)) or type(exc).__name__
        if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
            reason = "the disk is full"
        raise ExportError(f"Cannot write {safe_text(str(path))}: {reason}") from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def _percent_text(fraction: float) -> str:
    """``0.29`` -> ``"29"``, ``0.123`` -> ``"12.3"``: a percentage to a tenth, without a trailing ``.0``."""
    return f"{round(100 * fraction, 1):g}"


def _count_ticks(axis: pg.AxisItem, top: float) -> None:
    """Whole-number ticks (files) on ``axis``, about five of them up to ``top``."""
    step = max(1, int(np.ceil(top / 5)))
    axis.setTickSpacing(major=step, minor=step)


class BatchChart(QWidget):
    """Two panels over the file table's rows: files per dominant emotion, and files per confidence.

    The counts are recomputed from the rows given to :meth:`set_results` (the view calls it at
    its batched table updates, at most every 100 ms, and when a batch ends or is cleared); while
    the chart is hidden (another tab) it only notes that it is stale and counts when shown, and
    during a batch it skips updates that would cost more than a tenth of the GUI thread's time.
    The bars are updated in place, never re-created.

    Parameters
    ----------
    labels : sequence of str
        The model's emotions, in order.
    folder : callable returning str, optional
        The folder the export dialog opens in (the app's last folder).
    uncertainty_threshold : float or None
        The model's threshold, marked on the confidence histogram.

    Signals
    -------
    message(str)
        A status-bar message (export written or failed).
    """

    message = Signal(str)

    def __init__(self, labels: Sequence[str], *, folder: Callable[[], str] | None = None,
                 uncertainty_threshold: float | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels = tuple(labels)
        self._folder = folder or (lambda: os.path.expanduser("~"))
        self.threshold = uncertainty_threshold
        self.results: Sequence[FileResult | None] = ()
        self.summary = summarize_batch((), self.labels, threshold=uncertainty_threshold)
        self._stale = False
        self._counted_at, self._count_cost_s = 0.0, 0.0
        self.export_error_box: QMessageBox | None = None

        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        self.title = QLabel("")
        self.title.setObjectName("batch_chart_title")
        head.addWidget(self.title, 1)
        self.export_button = QPushButton("Export chart…")
        self.export_button.setToolTip(f"Save both panels as a PNG image ({DEFAULT_PNG_NAME})")
        self.export_button.clicked.connect(self._choose_export)
        head.addWidget(self.export_button)
        root.addLayout(head)

        self.plots = QWidget()  # what the PNG holds
        pl = QHBoxLayout(self.plots)
        pl.setContentsMargins(0, 0, 0, 0)
        self.emotion_plot = pg.PlotWidget()
        ep = self.emotion_plot.getPlotItem()
        style_plot(ep, left="", bottom="files")
        ep.setTitle("Dominant emotion per file", size="12pt")
        ep.showGrid(x=True, y=False, alpha=0.2)
        ep.setMouseEnabled(x=False, y=False)
        ep.invertY(True)  # the first emotion on top, as in the colour key
        ep.getAxis("left").setStyle(tickLength=0)
        self._bars: pg.BarGraphItem | None = None
        self._bar_texts: list[pg.TextItem] = []
        self._categories: list[str] = []
        self._separator = pg.InfiniteLine(angle=0, pen=pg.mkPen("#808080", width=1, style=Qt.PenStyle.DashLine))
        ep.addItem(self._separator)
        pl.addWidget(self.emotion_plot, 1)

        self.confidence_plot = pg.PlotWidget()
        cp = self.confidence_plot.getPlotItem()
        style_plot(cp, left="files", bottom="confidence", bottom_units="%")
        cp.setTitle("Confidence of the dominant emotion", size="12pt")
        cp.setMouseEnabled(x=False, y=False)
        cp.setXRange(0, 100, padding=0.02)
        self._hist = pg.BarGraphItem(x0=np.zeros(1), width=np.zeros(1), height=np.zeros(1),  # set by _draw
                                     brush=pg.mkBrush(HISTOGRAM_COLOR), pen=pg.mkPen("#A9C1E3", width=1))
        cp.addItem(self._hist)
        self.threshold_line: pg.InfiniteLine | None = None
        self._place_threshold_line()
        pl.addWidget(self.confidence_plot, 1)
        root.addWidget(self.plots, 1)
        self.setMinimumHeight(260)
        self._draw()

    def _place_threshold_line(self) -> None:
        """Draw the dashed "uncertain below" line at :attr:`threshold` (none without a threshold)."""
        if self.threshold_line is not None:
            self.confidence_plot.removeItem(self.threshold_line)
            self.threshold_line = None
        t = self.threshold
        if t:
            self.threshold_line = pg.InfiniteLine(
                pos=100 * t, angle=90,
                pen=pg.mkPen(UNCERTAIN_COLOR, width=1.5, style=Qt.PenStyle.DashLine),
                label=f"uncertain below {_percent_text(t)} %",
                labelOpts={"position": 0.95, "color": UNCERTAIN_COLOR, "anchors": [(0, 0.5), (0, 0.5)]})
            self.confidence_plot.addItem(self.threshold_line)

    def set_threshold(self, threshold: float | None) -> None:
        """Move the uncertainty threshold (the user changed the minimum confidence): line and bins follow.

        Results already analysed keep their own "uncertain" decision; only the histogram's bin
        edges and the dashed line move, so that no bar straddles the new line.
        """
        self.threshold = threshold
        self._place_threshold_line()
        self._stale = True
        if self.isVisible():
            self.refresh()

    # ------------------------------------------------------------------ data
    def set_results(self, results: Sequence[FileResult | None], *, partial: bool = False) -> None:
        """Show the counts of ``results`` (the table's rows); counted now if visible, else when shown.

        Parameters
        ----------
        results : sequence of FileResult or None
            The table's rows (kept by reference).
        partial : bool
            A batch is still running: skip this update if counting now would take more than
            a tenth of the GUI thread's time (huge tables); the batch's end is never skipped.
        """
        self.results = results
        self._stale = True
        if not self.isVisible():
            return
        if partial and time.monotonic() - self._counted_at < 10 * self._count_cost_s:
            return
        self.refresh()

    def refresh(self) -> BatchSummary:
        """Count the rows given last (if not counted yet) and redraw; returns the counts shown."""
        if self._stale:
            self._stale = False
            t0 = time.monotonic()
            self.summary = summarize_batch(self.results, self.labels, threshold=self.threshold)
            self._draw()
            self._counted_at = time.monotonic()
            self._count_cost_s = self._counted_at - t0
        return self.summary

    def showEvent(self, event: QShowEvent) -> None:
        """Count the rows that arrived while the chart was hidden."""
        super().showEvent(event)
        self.refresh()

    def displayed_counts(self) -> dict[str, int]:
        """Return the bar chart as drawn: category text -> bar length (files)."""
        if self._bars is None:
            return {}
        widths = np.asarray(self._bars.opts["width"], dtype=float)
        return {name: round(float(w)) for name, w in zip(self._categories, widths, strict=True)}

    def displayed_histogram(self) -> list[int]:
        """Return the confidence histogram as drawn: files per bin."""
        return [round(float(h)) for h in np.asarray(self._hist.opts["height"], dtype=float)]

    def displayed_bars(self) -> list[tuple[float, float, int]]:
        """Return the confidence histogram's bars as drawn: (left %, right %, files) each."""
        opts = self._hist.opts
        x0 = np.asarray(opts["x0"], dtype=float)
        right = x0 + np.asarray(opts["width"], dtype=float)
        return [(float(a), float(b), n) for a, b, n in zip(x0, right, self.displayed_histogram(), strict=True)]

    # ------------------------------------------------------------------ drawing
    def _build_bars(self, names: list[str]) -> None:
        ep = self.emotion_plot.getPlotItem()
        if self._bars is not None:
            ep.removeItem(self._bars)
        for t in self._bar_texts:
            ep.removeItem(t)
        n_emotions = len(names) - 3
        brushes = [pg.mkBrush(emotion_color(lab)) for lab in self.summary.labels]
        brushes += [pg.mkBrush(UNCERTAIN_COLOR), pg.mkBrush(SILENCE_COLOR), pg.mkBrush(QColor(0, 0, 0, 0))]
        pens = [pg.mkPen(None)] * (n_emotions + 1) + [pg.mkPen("#909090", width=1),
                                                      pg.mkPen(emotion_color("angry"), width=1.5,
                                                               style=Qt.PenStyle.DashLine)]
        y = np.arange(len(names), dtype=float)
        self._bars = pg.BarGraphItem(x0=np.zeros(len(names)), y=y, height=0.7, width=np.zeros(len(names)),
                                     brushes=brushes, pens=pens)
        ep.addItem(self._bars)
        self._bar_texts = []
        for i in range(len(names)):
            t = pg.TextItem("0", color="#E6E6E6", anchor=(0, 0.5))
            t.setPos(0, i)
            ep.addItem(t)
            self._bar_texts.append(t)
        ep.getAxis("left").setTicks([[(i, name) for i, name in enumerate(names)]])
        ep.setYRange(-0.6, len(names) - 0.4, padding=0)
        self._separator.setValue(n_emotions + 0.5)  # emotions above; no speech and failed below
        self._categories = names

    def _draw(self) -> None:
        s = self.summary
        rows = s.categories()
        names = [name for name, _ in rows]
        if names != self._categories:
            self._build_bars(names)
        assert self._bars is not None
        values = np.array([n for _, n in rows], dtype=float)
        self._bars.setOpts(width=values)
        top = max(1.0, float(values.max()))
        for t, v in zip(self._bar_texts, values, strict=True):
            t.setText(f"{v:.0f}")
            t.setPos(v + top * 0.01, t.pos().y())
        ep = self.emotion_plot.getPlotItem()
        ep.setXRange(0, top * 1.12 + 0.5, padding=0)
        _count_ticks(ep.getAxis("bottom"), top)
        hist = np.array(s.confidence_counts, dtype=float)
        edges = 100 * np.asarray(s.bin_edges, dtype=float)
        widths = np.diff(edges)
        # each bar inside its bin, the gap split on both sides: no bar touches the threshold's line
        self._hist.setOpts(x0=edges[:-1] + widths * (1 - BAR_FILL) / 2, width=widths * BAR_FILL, height=hist)
        cp = self.confidence_plot.getPlotItem()
        hist_top = max(1.0, float(hist.max()))
        cp.setYRange(0, hist_top * 1.25, padding=0)  # room above the bars for the threshold's label
        _count_ticks(cp.getAxis("left"), hist_top)
        n = len(self.results)
        if n == 0:
            self.title.setText("Batch summary: no files yet")
        else:
            done = f"{s.finished} of {n} files analysed" if s.pending else f"{n} file{'s' if n != 1 else ''}"
            self.title.setText(f"<b>Batch summary</b> ({done}): {s.ok} with speech · {s.uncertain} of them "
                               f"uncertain · {s.no_speech} no speech · {s.failed} failed")
        self.export_button.setEnabled(s.finished > 0)

    # ------------------------------------------------------------------ export
    def png_bytes(self) -> bytes:
        """Encode both panels, as drawn now, as PNG (the size of :attr:`plots`)."""
        self.refresh()
        image = self.plots.grab().toImage()
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        if not image.save(buf, "PNG"):  # type: ignore[call-overload]  # the stub says bytes; PySide6 takes str
            raise ExportError("Cannot encode the chart as PNG")
        buf.close()
        return bytes(data.data())

    def save_png(self, path: Path) -> Path:
        """Write the chart to ``path`` as PNG, atomically and privately.

        Raises
        ------
        ExportError
            The file could not be written (any earlier file at ``path`` is unchanged).
        """
        return atomic_write_bytes(Path(path), self.png_bytes())

    def export_png(self, path: Path) -> bool:
        """Save the chart; on failure say why (status message and a message box). True when written."""
        try:
            out = self.save_png(path)
        except ExportError as exc:
            self.message.emit(str(exc))
            self.export_error_box = export_failed_box(self, str(exc))
            return False
        self.message.emit(f"Exported {out}")
        return True

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the batch summary chart as PNG",
                                              os.path.join(self._folder(), DEFAULT_PNG_NAME), "PNG image (*.png)")
        if path:
            p = Path(path)
            self.export_png(p if p.suffix else p.with_suffix(".png"))
