"""Shared widgets: a text that fits its width (shrinks, then elides), the emotion display, the level meter."""

from __future__ import annotations

import math

import desktop_support  # noqa: F401  (offscreen Qt before any QApplication)
import pytest
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop_app.widgets import EmotionDisplay, FitLabel

pytestmark = pytest.mark.gui

SENTENCE = "Listening — no speech"
PATH = "/home/someone/Music/ser recordings/2025/january/ser-20250101-120000.wav"


def _host(qtbot, label: FitLabel | QWidget, width: int) -> QWidget:
    """Show ``label`` alone in a window ``width`` pixels wide."""
    host = QWidget()
    qtbot.addWidget(host)
    QVBoxLayout(host).addWidget(label)
    host.resize(width, 120)
    host.show()
    qtbot.waitExposed(host)
    return host


def _big(label: FitLabel, points: int = 44) -> None:
    f = QFont()
    f.setPointSize(points)
    f.setBold(True)
    label.setFont(f)


def _fits(label: FitLabel) -> None:
    """Assert the shown text fits the label and is the whole text's beginning (cut, if at all, at the end)."""
    shown = label.text()
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width(), (shown, label.width())
    assert label.full_text().startswith(shown.removesuffix("…")), shown


def _advance_at(text: str, points: float, *, bold: bool = True) -> int:
    from PySide6.QtGui import QFontMetrics

    f = QFont()
    f.setPointSizeF(points)
    f.setBold(bold)
    return QFontMetrics(f).horizontalAdvance(text)


def test_a_text_that_fits_is_shown_whole_in_the_full_font(qtbot) -> None:
    label = FitLabel(SENTENCE, min_point_size=20)
    _big(label)
    host = _host(qtbot, label, _advance_at(SENTENCE, 44) + 60)  # noqa: F841  (qtbot holds widgets weakly)
    qtbot.waitUntil(lambda: _fits(label))
    assert label.text() == SENTENCE
    assert label.font().pointSizeF() == 44
    assert not label.is_elided()


def test_a_narrow_label_shrinks_its_font_before_cutting(qtbot) -> None:
    label = FitLabel(SENTENCE, min_point_size=20)
    _big(label)
    width = (_advance_at(SENTENCE, 44) + _advance_at(SENTENCE, 20)) // 2  # room for a size between floor and full
    host = _host(qtbot, label, width)
    qtbot.waitUntil(lambda: _fits(label))
    assert label.text() == SENTENCE  # whole: both ends kept
    assert 20 <= label.font().pointSizeF() < 44
    assert label.font().bold()
    assert label.base_font().pointSizeF() == 44
    # widened again: back to the full size
    host.resize(_advance_at(SENTENCE, 44) + 60, 120)
    qtbot.waitUntil(lambda: label.font().pointSizeF() == 44)
    assert label.text() == SENTENCE


def test_below_the_floor_the_end_is_elided_and_the_whole_text_is_the_tooltip(qtbot) -> None:
    label = FitLabel(SENTENCE, min_point_size=20)
    _big(label)
    cuts: list[bool] = []
    label.elided.connect(cuts.append)
    host = _host(qtbot, label, _advance_at(SENTENCE, 20) * 2 // 3)
    qtbot.waitUntil(lambda: label.is_elided())
    _fits(label)
    assert label.font().pointSizeF() == 20  # the floor, not smaller
    assert label.text().startswith("Listening")
    assert label.text().endswith("…")
    assert label.full_text() == SENTENCE
    assert label.toolTip() == SENTENCE
    assert label.accessibleName() == SENTENCE
    host.resize(_advance_at(SENTENCE, 44) + 60, 120)
    qtbot.waitUntil(lambda: not label.is_elided())
    assert label.text() == SENTENCE
    assert cuts == [True, False]


def test_a_path_is_elided_in_the_middle_keeping_its_start_and_file_name(qtbot) -> None:
    label = FitLabel(f"Saved: {PATH}", elide=Qt.TextElideMode.ElideMiddle)
    host = _host(qtbot, label, 260)  # noqa: F841
    qtbot.waitUntil(lambda: label.is_elided())
    shown = label.text()
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    head, _, tail = shown.partition("…")
    assert head.startswith("Saved: /home")
    assert tail.endswith(".wav")
    assert PATH.endswith(tail)
    assert label.toolTip() == f"Saved: {PATH}"


def test_the_label_never_makes_its_window_wider(qtbot) -> None:
    """The size hint asks for the whole text, the minimum is a few pixels: layouts may squeeze it."""
    label = FitLabel(PATH * 3, min_point_size=20)
    _big(label)
    assert label.sizeHint().width() >= _advance_at(PATH * 3, 44)
    assert label.minimumSizeHint().width() <= 2 * _advance_at("…", 44)  # room for an ellipsis
    host = _host(qtbot, label, 300)
    assert host.minimumSizeHint().width() < 300
    qtbot.waitUntil(lambda: _fits(label))


@pytest.mark.parametrize("width", [380, 520])  # the live view's minimum for it, and about its share at 1092 px
def test_every_state_text_of_the_emotion_display_fits(qtbot, width: int) -> None:
    from desktop_app.live_view import NO_MICROPHONE_TEXT
    from ser_engine.inference.model import KNOWN_LABELS

    display = EmotionDisplay()
    display.setMinimumWidth(380)
    host = _host(qtbot, display, width)  # noqa: F841
    states = [display.show_no_speech, lambda: display.show_message("Input lost", NO_MICROPHONE_TEXT),
              lambda: display.show_message("Listening…", "waiting for the first analysis window")]
    states += [lambda lab=lab: display.show_emotion(lab, 0.87) for lab in KNOWN_LABELS]
    states += [lambda lab=lab: display.show_uncertain(lab, 0.41) for lab in KNOWN_LABELS]
    for show in states:
        show()
        for label in (display.title, display.detail):
            qtbot.waitUntil(lambda label=label: _fits(label))
            assert label.text() == label.full_text(), (width, label.full_text())  # shrunk, never cut
    display.show_uncertain("happy", 0.41)
    assert display.title.font().italic()  # in the font, where the fitting measures it
    display.show_no_speech()
    assert not display.title.font().italic()


def test_probability_bars_paint_their_axes_from_a_cache(qtbot) -> None:
    # the grid makes the axes cover the plot: new bars every hop must not replay all their ticks
    from PySide6.QtWidgets import QGraphicsItem

    from desktop_app.widgets import ProbabilityBars

    bars = ProbabilityBars(("angry", "happy", "neutral"))
    qtbot.addWidget(bars)
    item = bars.getPlotItem()
    for name in ("left", "bottom"):
        assert item.getAxis(name).cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache, name


class _PaintRects(QObject):
    """Records the rectangle of every paint event of the watched widget."""

    def __init__(self) -> None:
        super().__init__()
        self.rects: list = []

    def eventFilter(self, watched, event) -> bool:
        del watched  # Qt's signature: one widget is watched
        if event.type() == QEvent.Type.Paint:
            self.rects.append(event.rect())
        return False


def test_level_meter_repaints_only_what_changed_and_the_number_at_a_readable_pace(qtbot) -> None:
    from desktop_app.widgets import LevelMeter

    meter = LevelMeter()
    host = _host(qtbot, meter, 600)
    assert host.isVisible()
    spy = _PaintRects()
    meter.installEventFilter(spy)
    meter.set_level(-30.0, -20.0, 0.033)  # sound after silence: bar and number at once
    qtbot.waitUntil(lambda: bool(spy.rects))
    assert meter.shown_text.strip() == "−30.0 dBFS"
    spy.rects.clear()
    meter.set_level(-27.0, -20.0, 0.033)  # the bar moves; the number waits for its pace
    qtbot.waitUntil(lambda: bool(spy.rects))
    painted = spy.rects[-1]
    assert painted.intersects(meter.bar_rect())
    assert not painted.intersects(meter.text_rect())
    assert not painted.intersects(meter.clip_rect())
    assert meter.shown_text.strip() == "−30.0 dBFS"
    for _ in range(8):  # 0.26 s later the number follows the level
        meter.set_level(-27.0, -20.0, 0.033)
    assert meter.shown_text.strip() == "−27.0 dBFS"
    qtbot.waitUntil(lambda: any(r.intersects(meter.text_rect()) for r in spy.rects))
    # full scale lights CLIP and holds it for CLIP_HOLD_S
    spy.rects.clear()
    meter.set_level(-3.0, 0.0, 0.033)
    assert meter.clipping
    qtbot.waitUntil(lambda: any(r.intersects(meter.clip_rect()) for r in spy.rects))
    meter.set_level(-3.0, -6.0, LevelMeter.CLIP_HOLD_S - 0.1)
    assert meter.clipping
    meter.set_level(-3.0, -6.0, 0.2)
    assert not meter.clipping
    # silence shows at once
    meter.set_level(-math.inf, -math.inf, 0.033)
    assert meter.shown_text == "−∞ dBFS"
    meter.reset()
    assert meter.shown_text == "−∞ dBFS"
    assert not meter.clipping
