"""Shared widgets: level meter, big emotion label, probability bars, plot styling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QVBoxLayout, QWidget

from desktop_app.palette import SILENCE_COLOR, UNCERTAIN_COLOR, emotion_color, label_text
from ser_engine.live.ringbuffer import RingBuffer

__all__ = [
    "ColorKey",
    "EmotionDisplay",
    "FixedViewCurve",
    "LevelMeter",
    "ProbabilityBars",
    "ScrollingEnvelope",
    "min_max_envelope",
    "style_plot",
]

AXIS_FONT_PT = 11


def style_plot(plot: pg.PlotItem, *, left: str, bottom: str, left_units: str | None = None,
               bottom_units: str | None = None) -> None:
    """Axis labels with units, readable tick fonts, no mouse zoom surprises."""
    font = QFont()
    font.setPointSize(AXIS_FONT_PT)
    for name, text, units in (("left", left, left_units), ("bottom", bottom, bottom_units)):
        axis = plot.getAxis(name)
        axis.setLabel(text, units=units, **{"font-size": f"{AXIS_FONT_PT}pt"})
        axis.setTickFont(font)
        axis.enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(False)
    plot.hideButtons()


def min_max_envelope(y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Min/max envelope of ``y`` (shape (n,)) in ``columns`` columns, as an interleaved line.

    Returns
    -------
    idx : ndarray, shape (2 * columns,) - sample index of each point
    val : ndarray, shape (2 * columns,)
    """
    n = y.shape[0]
    if n == 0:
        return np.zeros(0), np.zeros(0)
    per = max(1, -(-n // max(1, columns)))  # ceil: every sample lands in a column
    columns = -(-n // per)
    pad = columns * per - n
    body = (np.concatenate([y, np.full(pad, y[-1], dtype=y.dtype)]) if pad else y).reshape(columns, per)
    lo, hi = body.min(axis=1), body.max(axis=1)
    val = np.empty(2 * columns, dtype=np.float32)
    val[0::2], val[1::2] = lo, hi
    starts = np.arange(columns) * per
    idx = np.empty(2 * columns, dtype=np.float64)
    idx[0::2] = starts
    idx[1::2] = np.minimum(starts + per, n)
    return idx, val


class ScrollingEnvelope:
    """Min/max envelope of the newest ``columns * per`` samples of a ring buffer, updated incrementally.

    Each repaint only reads the samples that arrived since the previous one
    (a few hundred at 30 fps) instead of the whole 8 s window.

    Parameters
    ----------
    columns : int
        Envelope columns (min/max pairs) across the view.
    per : int
        Samples per column.
    """

    def __init__(self, *, columns: int, per: int) -> None:
        self.columns, self.per = columns, per
        self.lo = np.zeros(columns, dtype=np.float32)
        self.hi = np.zeros(columns, dtype=np.float32)
        self.end: int | None = None  # stream position just after the newest complete column
        self._base = np.repeat(np.arange(-columns, 0, dtype=np.float64) * per, 2)
        self._base[1::2] += per

    def _rebuild(self, ring: RingBuffer) -> None:
        n = self.columns * self.per
        end = ring.write_position
        y = ring.latest(n)
        body = y.reshape(self.columns, self.per)
        self.lo[:] = body.min(axis=1)
        self.hi[:] = body.max(axis=1)
        self.end = end

    def update(self, ring: RingBuffer) -> None:
        """Take in the samples written since the last call."""
        w = ring.write_position
        if self.end is None or w < self.end or w - self.end >= self.columns * self.per:
            self._rebuild(ring)
            return
        k = (w - self.end) // self.per
        if k == 0:
            return
        block = ring.copy_range(self.end, k * self.per)
        if block is None:  # overwritten meanwhile (the GUI stalled): start over
            self._rebuild(ring)
            return
        b = block.reshape(k, self.per)
        self.lo[:-k] = self.lo[k:]
        self.hi[:-k] = self.hi[k:]
        self.lo[-k:] = b.min(axis=1)
        self.hi[-k:] = b.max(axis=1)
        self.end += k * self.per

    def line(self, ring: RingBuffer) -> tuple[np.ndarray, np.ndarray]:
        """Interleaved (sample offset from now, value) points, oldest first, the newest partial column included."""
        assert self.end is not None
        w = ring.write_position
        part = ring.copy_range(self.end, w - self.end) if w > self.end else None
        x = self._base - (w - self.end)
        val = np.empty(2 * self.columns, dtype=np.float32)
        val[0::2], val[1::2] = self.lo, self.hi
        if part is not None and part.size:
            x = np.concatenate([x, [-(w - self.end), 0.0]])
            val = np.concatenate([val, [part.min(), part.max()]])
        return x, val


class FixedViewCurve(pg.PlotCurveItem):  # type: ignore[misc]
    """A curve whose bounds are the fixed view it lives in (skips pyqtgraph's per-update bounds scan)."""

    def __init__(self, rect: QRectF, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._rect = QRectF(rect)

    def boundingRect(self) -> QRectF:
        """Return the fixed rectangle (Qt's API)."""
        return QRectF(self._rect)

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: object = None) -> tuple[float, float]:
        """Return the fixed range on axis ``ax`` (pyqtgraph's API), whatever the data."""
        del frac, orthoRange  # pyqtgraph's signature: the bounds do not depend on them
        r = self._rect
        return (r.left(), r.right()) if ax == 0 else (r.top(), r.bottom())


class LevelMeter(QWidget):
    """Horizontal dBFS meter (-60..0 dBFS) with a peak-hold clipping indicator."""

    FLOOR_DB = -60.0
    CLIP_DB = -0.1  # a sample within 0.1 dB of full scale counts as clipping
    CLIP_HOLD_S = 1.5

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level_db = -math.inf
        self.peak_db = -math.inf
        self.clipping = False
        self._clip_left = 0.0
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # paints every pixel itself
        self.setToolTip("Input level (RMS, dBFS); CLIP lights when samples reach full scale")

    def sizeHint(self) -> QSize:
        """Return the meter's preferred size (Qt's API)."""
        return QSize(360, 34)

    def set_level(self, rms_db: float, peak_db: float, dt: float) -> None:
        """Show a level (RMS and peak, dBFS); ``dt`` seconds since the last one age the clip light."""
        self.level_db, self.peak_db = rms_db, peak_db
        if peak_db >= self.CLIP_DB:
            self._clip_left = self.CLIP_HOLD_S
        else:
            self._clip_left = max(0.0, self._clip_left - dt)
        self.clipping = self._clip_left > 0
        self.update()

    def reset(self) -> None:
        """Show no level (the input closed)."""
        self.level_db = self.peak_db = -math.inf
        self._clip_left = 0.0
        self.clipping = False
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the bar, the level in dBFS and the clip light (Qt's event handler)."""
        del event  # Qt's signature: the whole meter is painted
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().window())
        clip_w = 56
        text_w = 110
        bar = QRectF(0, 4, self.width() - clip_w - text_w - 12, self.height() - 8)
        p.fillRect(bar, QColor("#202020"))
        frac = 0.0 if not math.isfinite(self.level_db) else (self.level_db - self.FLOOR_DB) / -self.FLOOR_DB
        frac = min(1.0, max(0.0, frac))
        colour = "#009E73" if self.level_db < -12 else ("#F0E442" if self.level_db < -3 else "#D55E00")
        p.fillRect(QRectF(bar.left(), bar.top(), bar.width() * frac, bar.height()), QColor(colour))
        p.setPen(QColor("#606060"))
        for db in (-48, -36, -24, -12, -6):
            x = bar.left() + bar.width() * (db - self.FLOOR_DB) / -self.FLOOR_DB
            p.drawLine(int(x), int(bar.top()), int(x), int(bar.bottom()))
        p.setPen(QColor("#E0E0E0"))
        f = p.font()
        f.setPointSize(12)
        p.setFont(f)
        txt = "−∞ dBFS" if not math.isfinite(self.level_db) else f"{self.level_db:6.1f} dBFS".replace("-", "−")
        p.drawText(QRectF(bar.right() + 6, 0, text_w, self.height()), Qt.AlignmentFlag.AlignVCenter, txt)
        clip = QRectF(self.width() - clip_w, 4, clip_w, self.height() - 8)
        p.fillRect(clip, QColor("#D55E00") if self.clipping else QColor("#303030"))
        p.setPen(QColor("#FFFFFF") if self.clipping else QColor("#707070"))
        p.drawText(clip, Qt.AlignmentFlag.AlignCenter, "CLIP")
        p.end()


class EmotionDisplay(QWidget):
    """The current emotion in large type with its confidence, or a clear state text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Stopped")
        self.detail = QLabel("Press Start to listen to the microphone")
        f = QFont()
        f.setPointSize(44)
        f.setBold(True)
        self.title.setFont(f)
        g = QFont()
        g.setPointSize(16)
        self.detail.setFont(g)
        for w in (self.title, self.detail):
            w.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.detail)
        self.state = "stopped"
        self.label: str | None = None
        self._colour("#B0B0B0")

    def _colour(self, colour: str, *, italic: bool = False) -> None:
        self.title.setStyleSheet(f"color: {colour};" + (" font-style: italic;" if italic else ""))

    def show_emotion(self, label: str, confidence: float) -> None:
        """Show an emotion and the model's confidence in it."""
        self.state, self.label = "emotion", label
        self.title.setText(label_text(label))
        self.detail.setText(f"confidence {confidence * 100:.0f} %")
        self._colour(emotion_color(label))

    def show_uncertain(self, label: str, confidence: float) -> None:
        """Show that the model is not sure: "Uncertain" in grey; the detail names the arg-max emotion."""
        self.state, self.label = "uncertain", label
        self.title.setText("Uncertain")
        self.detail.setText(f"perhaps {label_text(label).lower()} ({confidence * 100:.0f} %)")
        self._colour(UNCERTAIN_COLOR, italic=True)

    def show_no_speech(self) -> None:
        """Show that the window holds no speech."""
        self.state, self.label = "no_speech", None
        self.title.setText("Listening — no speech")
        self.detail.setText("speak, or raise the gate sensitivity in Settings")
        self._colour("#B0B0B0")

    def show_message(self, title: str, detail: str, state: str = "stopped") -> None:
        """Show a title and a detail line instead of an emotion (``state`` names the situation)."""
        self.state, self.label = state, None
        self.title.setText(title)
        self.detail.setText(detail)
        self._colour("#B0B0B0")


class ColorKey(QLabel):
    """A one-line colour key: a coloured square and the name of each emotion (and of "no speech")."""

    def __init__(self, labels: Sequence[str], *, silence: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        items = [(emotion_color(lab), label_text(lab)) for lab in labels]
        if silence:
            items.append((SILENCE_COLOR, "no speech"))
        self.setText("&nbsp;&nbsp;&nbsp;".join(
            f"<span style='color:{c}; font-size:15pt;'>&#9632;</span>&nbsp;{t}" for c, t in items))
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("font-size:11pt;")


class ProbabilityBars(pg.PlotWidget):  # type: ignore[misc]
    """Vertical bars, one per emotion in its colour, probability in percent."""

    def __init__(self, labels: Sequence[str], *, title: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.labels = tuple(labels)
        item = self.getPlotItem()
        style_plot(item, left="probability", left_units="%", bottom="emotion")
        if title:
            item.setTitle(title, size="12pt")
        item.getAxis("bottom").setTicks([[(i, label_text(lab)) for i, lab in enumerate(self.labels)]])
        item.setYRange(0, 100, padding=0.02)
        item.setXRange(-0.6, len(self.labels) - 0.4, padding=0)
        item.setMouseEnabled(x=False, y=False)
        self.values = np.zeros(len(self.labels))
        brushes = [pg.mkBrush(emotion_color(lab)) for lab in self.labels]
        self._bars = pg.BarGraphItem(x=np.arange(len(self.labels)), height=self.values, width=0.7, brushes=brushes,
                                     pen=pg.mkPen(None))
        item.addItem(self._bars)
        self.setMinimumHeight(180)

    def set_probabilities(self, probs: dict[str, float] | None) -> None:
        """Percent bars from a label->probability dict; None or empty clears them."""
        vals = np.array([100.0 * float((probs or {}).get(lab, 0.0)) for lab in self.labels])
        self.values = vals
        self._bars.setOpts(height=vals)


SILENCE = SILENCE_COLOR


def export_failed_box(parent: QWidget, text: str) -> QMessageBox:
    """Open a window-modal, non-blocking "Export failed" box naming the file and the reason.

    Parameters
    ----------
    parent : QWidget
        The window the box belongs to.
    text : str
        The failure, as the exporter worded it (it names the file).

    Returns
    -------
    QMessageBox
        The open box (tests read it).
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Export failed")
    box.setText(text)
    box.setInformativeText("Nothing was changed: an earlier file at that path is kept as it was.")
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box
