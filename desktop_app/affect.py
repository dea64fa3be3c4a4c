"""Arousal and valence: the live affect gauge and the mapping from scores to what it shows.

A model with an affect output (:attr:`ser_engine.inference.model.EmotionModel.affect_names`, e.g.
``("arousal", "valence")``) gives each speech window a score in [0, 1] per dimension: the
probability of the dimension's high side (arousal: activated rather than calm; valence:
positive rather than negative). The app shows them as

* :class:`AffectGauge` (live tab, under the current emotion): one compact row per
  dimension, its name, then a track from its low side ("calm") to its high side
  ("activated") filled from the middle (0.5, "in between") to the score; the end word it
  leans to is lit in the dimension's colour. An empty grey track on silence. Hidden for a
  model without affect.
* timelines (live and file view) drawn by the views with :func:`affect_axis` colours and
  :func:`segment_affect_curve`.

The mapping (:func:`affect_axis`, :func:`lean_text`, :func:`gauge_reading`,
:func:`segment_affect_curve`) is plain Python, tested without widgets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from ser_engine.files.analysis import Segment

__all__ = [
    "IN_BETWEEN",
    "NO_SPEECH_COLOR",
    "AffectAxis",
    "AffectBar",
    "AffectGauge",
    "AffectReading",
    "affect_axis",
    "affect_title_html",
    "gauge_reading",
    "lean_text",
    "segment_affect_curve",
]

NO_SPEECH_COLOR = "#5A5A5A"
"""The gauge's grey: an empty track and "no speech" on silence."""
IN_BETWEEN = 0.1
"""Scores within this of 0.5 lean nowhere ("in between")."""
CLEAR = 0.25
"""Scores at least this far from 0.5 are said plainly ("activated"); closer ones "somewhat ..."."""


@dataclass(frozen=True)
class AffectAxis:
    """How one affect dimension is shown.

    Attributes
    ----------
    name : str
        The model's name of the dimension (``arousal``).
    title : str
        Its display name (``Arousal``).
    low, high : str
        The words at the ends of its bar: score 0 and score 1 (``calm``, ``activated``).
    color : str
        Its colour in the gauge and the timelines (hex).
    """

    name: str
    title: str
    low: str
    high: str
    color: str


# orange and sky blue: a pair that stays apart for the common colour-vision deficiencies
_AXES = {
    "arousal": AffectAxis("arousal", "Arousal", "calm", "activated", "#FFA94D"),
    "valence": AffectAxis("valence", "Valence", "negative", "positive", "#74C0FC"),
}
_OTHER_COLORS = ("#C9A0FF", "#8CE99A", "#FFD43B")


def affect_axis(name: str, *, index: int = 0) -> AffectAxis:
    """Return how the affect dimension ``name`` is shown.

    Parameters
    ----------
    name : str
        A dimension of :attr:`~ser_engine.inference.model.EmotionModel.affect_names`.
    index : int
        Its position there (picks a colour for a dimension the app does not know).

    Returns
    -------
    AffectAxis
        Arousal: calm ↔ activated; valence: negative ↔ positive; any other: low ↔ high.
    """
    known = _AXES.get(name)
    if known is not None:
        return known
    return AffectAxis(name, name.replace("_", " ").capitalize(), "low", "high",
                      _OTHER_COLORS[index % len(_OTHER_COLORS)])


def lean_text(value: float | None, *, axis: AffectAxis) -> str:
    """Say where a score leans, in the axis's words.

    Parameters
    ----------
    value : float or None
        The score in [0, 1] (the probability of the high side); None on silence.
    axis : AffectAxis

    Returns
    -------
    str
        ``"no speech"`` for None; ``"in between"`` within :data:`IN_BETWEEN` of 0.5;
        ``"somewhat <side>"`` up to :data:`CLEAR` from 0.5; ``"<side>"`` beyond.
    """
    if value is None or not math.isfinite(value):
        return "no speech"
    d = value - 0.5
    if abs(d) < IN_BETWEEN:
        return "in between"
    side = axis.high if d > 0 else axis.low
    return side if abs(d) >= CLEAR else f"somewhat {side}"


@dataclass(frozen=True)
class AffectReading:
    """What one bar of the gauge shows.

    Attributes
    ----------
    axis : AffectAxis
    value : float or None
        The score, clipped to [0, 1]; None on silence (an empty grey bar).
    fill : tuple of float
        The filled part of the track as fractions of its width, from the middle to the score
        (``(0.5, 0.82)``, ``(0.18, 0.5)``); ``(0.5, 0.5)`` on silence.
    text : str
        :func:`lean_text`.
    lean : int
        The side the score leans to: -1 low, +1 high, 0 in between or silence (the end word lit).
    tooltip : str
        The score in words ("probability that the voice is activated: 82 %").
    color : str
        The axis's colour, or :data:`NO_SPEECH_COLOR` on silence.
    """

    axis: AffectAxis
    value: float | None
    fill: tuple[float, float]
    text: str
    lean: int
    tooltip: str
    color: str


def gauge_reading(value: float | None, *, axis: AffectAxis) -> AffectReading:
    """Map one score to what its gauge bar shows.

    Parameters
    ----------
    value : float or None
        The score in [0, 1] (a non-finite one counts as none); None on silence.
    axis : AffectAxis

    Returns
    -------
    AffectReading
    """
    if value is None or not math.isfinite(value):
        return AffectReading(axis, None, (0.5, 0.5), lean_text(None, axis=axis), 0,
                             f"{axis.title}: no speech", NO_SPEECH_COLOR)
    v = min(1.0, max(0.0, float(value)))
    lean = 0 if abs(v - 0.5) < IN_BETWEEN else (1 if v > 0.5 else -1)
    text = lean_text(v, axis=axis)
    return AffectReading(axis, v, (min(0.5, v), max(0.5, v)), text, lean,
                         f"{axis.title}: {text} ({v:.2f}, the probability that the voice is {axis.high} "
                         f"rather than {axis.low})", axis.color)


def affect_title_html(names: Sequence[str], *, what: str, short: bool = False) -> str:
    """Return a plot title naming each affect dimension in its colour with its two ends.

    Parameters
    ----------
    names : sequence of str
        The model's affect dimensions.
    what : str
        The rest of the title (", last 60 s").
    short : bool
        Name the high end only ("Arousal (100 = activated)"), for a narrow plot.

    Returns
    -------
    str
        Rich text ("Arousal (0 = calm, 100 = activated) and Valence (...)" + ``what``), the
        plot's colour key.
    """
    parts = []
    for i, name in enumerate(names):
        ax = affect_axis(name, index=i)
        ends = f"100 = {ax.high}" if short else f"0 = {ax.low}, 100 = {ax.high}"
        parts.append(f"<span style='color:{ax.color}'><b>{ax.title}</b></span> ({ends})")
    if len(parts) > 1:
        parts = [", ".join(parts[:-1]), parts[-1]]
    return " and ".join(parts) + what


def segment_affect_curve(spans: Sequence[tuple[float, float, Segment | None]], *,
                         name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return a file's score of one affect dimension over time, as a stepped line with gaps.

    Parameters
    ----------
    spans : sequence of (start_s, end_s, Segment or None)
        The file timeline's spans (:func:`desktop_app.file_view.voiced_timeline`): each
        window's stretch where the voice is, None where there is no speech.
    name : str
        The affect dimension.

    Returns
    -------
    x : ndarray, shape (n,)
        Seconds: each span's start and end.
    y : ndarray, shape (n,)
        Percent: the span's window's score at both ends (a flat step); NaN for a span
        without speech or without that score, so the line has a gap there.
    """
    xs: list[float] = []
    ys: list[float] = []
    for a, b, seg in spans:
        v = seg.affect.get(name) if seg is not None and seg.speech else None
        y = math.nan if v is None else 100.0 * float(v)
        xs += [a, b]
        ys += [y, y]
    return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)


class AffectBar(QWidget):
    """One dimension of the gauge in one row: its name, the low word, the track, the high word."""

    TITLE_W = 84
    END_W = 84  # room for the end words ("activated", "negative") at 11 pt
    TRACK_H = 16
    ROW_H = 30

    def __init__(self, axis: AffectAxis, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.axis = axis
        self.reading = gauge_reading(None, axis=axis)
        self.setMinimumHeight(self.ROW_H)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(self.reading.tooltip)

    def sizeHint(self) -> QSize:
        """Return the bar's preferred size (Qt's API)."""
        return QSize(480, self.ROW_H)

    def set_value(self, value: float | None) -> None:
        """Show a score in [0, 1], or None for silence (an empty grey track)."""
        self.reading = gauge_reading(value, axis=self.axis)
        self.setToolTip(self.reading.tooltip)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the name, the end words (the one leaned to lit) and the track (Qt's event handler)."""
        del event  # Qt's signature: the whole bar is painted
        r = self.reading
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = float(self.width()), float(self.height())
        title_w, end_w = self.TITLE_W, self.END_W
        centre = Qt.AlignmentFlag.AlignVCenter
        f = QFont(self.font())
        f.setPointSize(12)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor("#E0E0E0" if r.value is not None else "#909090"))
        p.drawText(QRectF(0, 0, title_w, h), Qt.AlignmentFlag.AlignLeft | centre, self.axis.title)
        for side, rect, align in ((-1, QRectF(title_w, 0, end_w - 8, h), Qt.AlignmentFlag.AlignRight),
                                  (1, QRectF(w - end_w + 8, 0, end_w - 8, h), Qt.AlignmentFlag.AlignLeft)):
            lit = r.lean == side
            f.setPointSize(11)
            f.setBold(lit)
            p.setFont(f)
            p.setPen(QColor(r.color if lit else "#A0A0A0"))
            p.drawText(rect, align | centre, self.axis.low if side < 0 else self.axis.high)
        track = QRectF(title_w + end_w, (h - self.TRACK_H) / 2, max(1.0, w - title_w - 2 * end_w), self.TRACK_H)
        p.setPen(QPen(QColor("#505050"), 1))
        p.setBrush(QColor("#202020"))
        p.drawRoundedRect(track, 4, 4)
        if r.value is not None:
            a, b = r.fill
            fill = QColor(r.color)
            fill.setAlpha(210)
            p.fillRect(QRectF(track.left() + a * track.width(), track.top() + 1,
                              (b - a) * track.width(), track.height() - 2), fill)
        mid = track.left() + 0.5 * track.width()
        p.setPen(QPen(QColor("#808080"), 1, Qt.PenStyle.DashLine))
        p.drawLine(int(mid), int(track.top()) - 3, int(mid), int(track.bottom()) + 3)
        if r.value is not None:
            x = track.left() + r.value * track.width()
            p.setPen(QPen(QColor("#FFFFFF"), 3))
            p.drawLine(int(x), int(track.top()) - 4, int(x), int(track.bottom()) + 4)
        p.end()


class AffectGauge(QWidget):
    """The live affect gauge: one :class:`AffectBar` per affect dimension of the model.

    Hidden when ``names`` is empty (a model without an affect output).

    Parameters
    ----------
    names : sequence of str
        The model's affect dimensions, in order.
    """

    def __init__(self, names: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.names = tuple(names)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 0, 12, 2)
        lay.setSpacing(2)
        self.bars = {name: AffectBar(affect_axis(name, index=i)) for i, name in enumerate(self.names)}
        for bar in self.bars.values():
            lay.addWidget(bar)
        self.setVisible(bool(self.names))

    @property
    def values(self) -> dict[str, float | None]:
        """The score each bar shows (None: silence)."""
        return {name: bar.reading.value for name, bar in self.bars.items()}

    @property
    def texts(self) -> dict[str, str]:
        """Where each bar says its dimension leans ("activated", "no speech")."""
        return {name: bar.reading.text for name, bar in self.bars.items()}

    def set_affect(self, affect: dict[str, float] | None) -> None:
        """Show a prediction's scores; None or empty (silence, stopped) shows empty grey bars."""
        for name, bar in self.bars.items():
            bar.set_value(None if not affect else affect.get(name))
