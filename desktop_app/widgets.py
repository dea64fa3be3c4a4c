"""Shared widgets: level meter, big emotion label, text that fits its width, probability bars, plot styling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QGraphicsItem, QLabel, QMessageBox, QSizePolicy, QVBoxLayout, QWidget

from desktop_app.palette import SILENCE_COLOR, UNCERTAIN_COLOR, emotion_color, label_text
from ser_engine.live.ringbuffer import RingBuffer

__all__ = [
    "ColorKey",
    "EmotionDisplay",
    "FitLabel",
    "FixedViewCurve",
    "LevelMeter",
    "ProbabilityBars",
    "ScrollingEnvelope",
    "cache_axes",
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


def cache_axes(plot: pg.PlotItem) -> None:
    """Paint the plot's left and bottom axes (with their grid lines) from a cached pixmap.

    An axis of a fixed range never changes, but it is repainted whenever a curve over it
    changes (its grid lines make it cover the plot), which replays all its ticks, labels
    and lines; from the cache that is one copy of pixels. A range or size change
    redraws the cache.
    """
    for name in ("left", "bottom"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


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
    """Horizontal dBFS meter (-60..0 dBFS) with a numeric read-out and a peak-hold clipping indicator.

    Fed about 30 times a second, it repaints only what changed: the bar when its filled width or
    colour moves by a pixel, the number when its text changes (at most every ``TEXT_EVERY_S``
    seconds, the pace a reader can follow), the clip light when it turns on or off.
    """

    FLOOR_DB = -60.0
    CLIP_DB = -0.1  # a sample within 0.1 dB of full scale counts as clipping
    CLIP_HOLD_S = 1.5
    TEXT_EVERY_S = 0.25
    CLIP_W = 56
    TEXT_W = 110

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level_db = -math.inf
        self.peak_db = -math.inf
        self.clipping = False
        self._clip_left = 0.0
        self._text_age = math.inf  # seconds since the number last changed
        self.shown_text = self._format(self.level_db)
        self._bar_state: tuple[int, str] = (0, self._colour(self.level_db))
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # paints every pixel itself
        self.setToolTip("Input level (RMS, dBFS); CLIP lights when samples reach full scale")

    def sizeHint(self) -> QSize:
        """Return the meter's preferred size (Qt's API)."""
        return QSize(360, 34)

    @staticmethod
    def _format(level_db: float) -> str:
        return "−∞ dBFS" if not math.isfinite(level_db) else f"{level_db:6.1f} dBFS".replace("-", "−")

    @staticmethod
    def _colour(level_db: float) -> str:
        return "#009E73" if level_db < -12 else ("#F0E442" if level_db < -3 else "#D55E00")

    def bar_rect(self) -> QRect:
        """Return the level bar's rectangle, in widget pixels."""
        return QRect(0, 4, max(0, self.width() - self.CLIP_W - self.TEXT_W - 12), max(0, self.height() - 8))

    def text_rect(self) -> QRect:
        """Return the numeric read-out's rectangle (the gap left of it included), in widget pixels."""
        bar = self.bar_rect()
        return QRect(bar.right() + 1, 0, self.TEXT_W + 12, self.height())

    def clip_rect(self) -> QRect:
        """Return the clip light's rectangle, in widget pixels."""
        return QRect(self.width() - self.CLIP_W, 0, self.CLIP_W, self.height())

    def _fill_px(self, level_db: float) -> int:
        frac = 0.0 if not math.isfinite(level_db) else (level_db - self.FLOOR_DB) / -self.FLOOR_DB
        return round(self.bar_rect().width() * min(1.0, max(0.0, frac)))

    def set_level(self, rms_db: float, peak_db: float, dt: float) -> None:
        """Show a level (RMS and peak, dBFS); ``dt`` seconds since the last one age the clip light and the number."""
        self.level_db, self.peak_db = rms_db, peak_db
        was_clipping = self.clipping
        if peak_db >= self.CLIP_DB:
            self._clip_left = self.CLIP_HOLD_S
        else:
            self._clip_left = max(0.0, self._clip_left - dt)
        self.clipping = self._clip_left > 0
        if self.clipping != was_clipping:
            self.update(self.clip_rect())
        bar_state = (self._fill_px(rms_db), self._colour(rms_db))
        if bar_state != self._bar_state:
            self._bar_state = bar_state
            self.update(self.bar_rect())
        self._text_age += dt
        text = self._format(rms_db)
        # silence and sound coming back show at once; a changing level at a readable pace
        if text != self.shown_text and (self._text_age >= self.TEXT_EVERY_S
                                        or not math.isfinite(rms_db) or "∞" in self.shown_text):
            self.shown_text = text
            self._text_age = 0.0
            self.update(self.text_rect())

    def reset(self) -> None:
        """Show no level (the input closed)."""
        self.level_db = self.peak_db = -math.inf
        self._clip_left = 0.0
        self.clipping = False
        self.shown_text = self._format(self.level_db)
        self._text_age = math.inf
        self._bar_state = (0, self._colour(self.level_db))
        self.update()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep the bar's filled width in step with the new size (Qt's event handler)."""
        super().resizeEvent(event)
        self._bar_state = (self._fill_px(self.level_db), self._colour(self.level_db))

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the parts of the meter that ``event`` asks for: bar, number, clip light (Qt's event handler)."""
        dirty = event.rect()
        p = QPainter(self)
        bar, text, clip = self.bar_rect(), self.text_rect(), self.clip_rect()
        if dirty.intersects(bar):
            p.fillRect(QRect(0, 0, bar.width(), self.height()), self.palette().window())
            p.fillRect(bar, QColor("#202020"))
            fill, colour = self._bar_state
            p.fillRect(QRect(bar.left(), bar.top(), fill, bar.height()), QColor(colour))
            p.setPen(QColor("#606060"))
            for db in (-48, -36, -24, -12, -6):
                x = bar.left() + round(bar.width() * (db - self.FLOOR_DB) / -self.FLOOR_DB)
                p.drawLine(x, bar.top(), x, bar.bottom())
        f = p.font()
        f.setPointSize(12)
        p.setFont(f)
        if dirty.intersects(text):
            p.fillRect(text, self.palette().window())
            p.setPen(QColor("#E0E0E0"))
            p.drawText(text.adjusted(6, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, self.shown_text)
        if dirty.intersects(clip):
            p.fillRect(clip, self.palette().window())
            light = clip.adjusted(0, 4, 0, -4)
            p.fillRect(light, QColor("#D55E00") if self.clipping else QColor("#303030"))
            p.setPen(QColor("#FFFFFF") if self.clipping else QColor("#707070"))
            p.drawText(light, Qt.AlignmentFlag.AlignCenter, "CLIP")
        p.end()


class FitLabel(QLabel):
    """A one-line label that shows its text's beginning within whatever width it is given.

    The text is drawn in the label's font when it fits. When it does not, the font
    shrinks (with ``min_point_size``), never below that floor; when even the floor
    is too wide, the text is elided (``elide``: at the right for a sentence, in the
    middle for a path, so its start and its file name stay). A centred label that is
    too narrow therefore never loses both ends of its text.

    The label asks the layout for room for the whole text in its full font, but
    accepts any width: a long text never makes the window wider. ``text()`` is what
    is shown; :meth:`full_text` is the whole text, which is also the tooltip and the
    accessible name (screen readers read all of it).

    Parameters
    ----------
    text : str
        The initial text.
    min_point_size : float, optional
        The smallest font size (points) to shrink to before eliding; None: never shrink.
    elide : Qt.TextElideMode
        Where to cut a text that does not fit even at the floor.

    Signals
    -------
    elided(bool)
        The shown text became a cut one (True) or the whole text again (False).
    """

    elided = Signal(bool)

    def __init__(self, text: str = "", *, min_point_size: float | None = None,
                 elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._cut = False  # the text shown lacks part of the whole text
        self._min_pt = min_point_size
        self._elide = elide
        self._base: QFont | None = None  # the full-size font; None: the inherited one, never changed here
        self.setTextFormat(Qt.TextFormat.PlainText)  # elision and measuring are on plain text
        self.setWordWrap(False)
        self.setText(text)

    # QLabel's own setters, so every caller gets the fitting
    def setText(self, text: str, /) -> None:
        """Show ``text``, shrunk or elided to fit (Qt's API; :meth:`full_text` returns it whole)."""
        if text == self._full and self.toolTip() == text:  # unchanged (the live view repeats its state)
            return
        self._full = text
        self.setToolTip(text)
        self.setAccessibleName(text)
        self.updateGeometry()  # the size hint is the whole text's
        self._fit()

    def setFont(self, font: QFont | str | Sequence[str], /) -> None:
        """Use ``font`` as the full-size font (Qt's API); the label shrinks from it when needed."""
        self._base = QFont(font) if isinstance(font, QFont) else None
        super().setFont(font)
        self.updateGeometry()
        self._fit()

    def full_text(self) -> str:
        """Return the whole text (``text()`` is the part shown)."""
        return self._full

    def base_font(self) -> QFont:
        """Return the full-size font the label shrinks from."""
        return QFont(self._base) if self._base is not None else self.font()

    def set_italic(self, italic: bool) -> None:
        """Draw the text in italics (in the font, not a style sheet, so the fitting measures it)."""
        base = self.base_font()
        if base.italic() != italic:
            base.setItalic(italic)
            self.setFont(base)

    def sizeHint(self) -> QSize:
        """Room for the whole text in the full-size font (Qt's API)."""
        fm = QFontMetrics(self.base_font())
        m = self.contentsMargins()
        extra_w = m.left() + m.right() + 2 * self.margin()
        extra_h = m.top() + m.bottom() + 2 * self.margin()
        return QSize(fm.horizontalAdvance(self._full) + extra_w, fm.height() + extra_h)

    def minimumSizeHint(self) -> QSize:
        """Any width down to an ellipsis, at the full font's height (Qt's API)."""
        hint = self.sizeHint()
        fm = QFontMetrics(self.base_font())
        return QSize(min(hint.width(), fm.horizontalAdvance("…") * 2), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Fit the text to the new width (Qt's event handler)."""
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        width = max(0, self.contentsRect().width() - 2 * self.margin())
        text = self._full
        font = self.base_font()
        size = font.pointSizeF()
        if self._base is not None and self._min_pt is not None and size > 0:
            advance = QFontMetrics(font).horizontalAdvance(text)
            while advance > width and size > self._min_pt:
                # jump near the size that fits (widths scale about linearly), then on in half points
                guess = math.floor(2 * size * width / max(1, advance)) / 2
                size = max(self._min_pt, min(size - 0.5, guess))
                font.setPointSizeF(size)
                advance = QFontMetrics(font).horizontalAdvance(text)
            if font != self.font():
                super().setFont(font)
        fm = QFontMetrics(font)
        if fm.horizontalAdvance(text) > width:
            text = fm.elidedText(text, self._elide, width)
        if text != super().text():
            super().setText(text)
        cut = text != self._full
        if cut != self._cut:
            self._cut = cut
            self.elided.emit(cut)

    def is_elided(self) -> bool:
        """Whether the text shown is cut (it lacks part of :meth:`full_text`)."""
        return self._cut


class EmotionDisplay(QWidget):
    """The current emotion in large type with its confidence, or a clear state text.

    Both lines are :class:`FitLabel`: in a narrow window the type shrinks (to a
    floor) before anything is cut, and then only the end is.
    """

    TITLE_PT, TITLE_MIN_PT = 44, 20
    DETAIL_PT, DETAIL_MIN_PT = 16, 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = FitLabel("Stopped", min_point_size=self.TITLE_MIN_PT)
        self.detail = FitLabel("Press Start to listen to the microphone", min_point_size=self.DETAIL_MIN_PT)
        f = QFont()
        f.setPointSize(self.TITLE_PT)
        f.setBold(True)
        self.title.setFont(f)
        g = QFont()
        g.setPointSize(self.DETAIL_PT)
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
        self.title.setStyleSheet(f"color: {colour};")
        self.title.set_italic(italic)

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
        cache_axes(item)  # new bars every hop would repaint the axes, which the grid makes cover the plot
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
