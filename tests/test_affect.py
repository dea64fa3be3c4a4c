"""Arousal and valence in the app: the mapping, the live gauge and timeline, the file view's timeline.

The mapping of :mod:`desktop_app.affect` is tested as plain functions. The widgets are real
(offscreen) and driven by real predictions and results of the tiny two-output model (emotion
logits + arousal/valence): the engine's :class:`~ser_engine.live.session.LiveSession` fed by an
:class:`~ser_engine.live.inputs.ArrayInput`, and file analysis of a synthetic clip. A model without
an affect output shows none of it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import synth_speechlike
from desktop_support import file_view, run_batch, temp_settings
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from desktop_app.affect import (
    NO_SPEECH_COLOR,
    AffectGauge,
    affect_axis,
    gauge_reading,
    lean_text,
    segment_affect_curve,
)
from desktop_app.file_view import voiced_timeline
from desktop_app.live_controller import LiveController, array_session_factory
from desktop_app.live_view import LiveView
from ser_engine.files.analysis import Segment, analyze_file
from ser_engine.inference.model import EmotionModel
from ser_engine.live.stream import Prediction

SR = 16000
AROUSAL, VALENCE = affect_axis("arousal"), affect_axis("valence")


# ---------------------------------------------------------------------- the mapping
def test_axes_name_their_ends() -> None:
    assert (AROUSAL.title, AROUSAL.low, AROUSAL.high) == ("Arousal", "calm", "activated")
    assert (VALENCE.title, VALENCE.low, VALENCE.high) == ("Valence", "negative", "positive")
    assert AROUSAL.color != VALENCE.color
    other = affect_axis("dominance", index=2)
    assert (other.title, other.low, other.high) == ("Dominance", "low", "high")
    assert other.color not in (AROUSAL.color, VALENCE.color)


@pytest.mark.parametrize(("value", "text"), [
    (None, "no speech"), (math.nan, "no speech"), (0.5, "in between"), (0.58, "in between"),
    (0.42, "in between"), (0.62, "somewhat activated"), (0.38, "somewhat calm"), (0.75, "activated"),
    (0.97, "activated"), (0.02, "calm"),
])
def test_lean_text(value: float | None, text: str) -> None:
    assert lean_text(value, axis=AROUSAL) == text


def test_gauge_reading_fills_from_the_middle_to_the_score() -> None:
    hi = gauge_reading(0.82, axis=AROUSAL)
    assert (hi.value, hi.fill, hi.lean, hi.color, hi.text) == (0.82, (0.5, 0.82), 1, AROUSAL.color, "activated")
    assert "0.82" in hi.tooltip
    assert "activated rather than calm" in hi.tooltip
    lo = gauge_reading(0.3, axis=VALENCE)
    assert (lo.fill, lo.lean, lo.text) == ((0.3, 0.5), -1, "somewhat negative")
    mid = gauge_reading(0.55, axis=VALENCE)
    assert (mid.lean, mid.text) == (0, "in between")
    assert gauge_reading(1.3, axis=VALENCE).value == 1.0  # clipped to the track
    for silent in (None, math.inf):
        r = gauge_reading(silent, axis=AROUSAL)
        assert (r.value, r.fill, r.lean, r.color, r.text) == (None, (0.5, 0.5), 0, NO_SPEECH_COLOR, "no speech")


def test_segment_curve_steps_per_window_with_gaps_where_there_is_no_speech() -> None:
    a = Segment(0.0, 3.0, True, "angry", {"angry": 1.0}, affect={"arousal": 0.9, "valence": 0.2})
    b = Segment(0.5, 3.5, True, "sad", {"sad": 1.0}, affect={"arousal": 0.1, "valence": 0.4})
    spans = [(0.0, 1.75, a), (1.75, 2.0, b), (2.0, 3.5, None)]
    x, y = segment_affect_curve(spans, name="arousal")
    np.testing.assert_allclose(x, [0.0, 1.75, 1.75, 2.0, 2.0, 3.5])
    np.testing.assert_allclose(y[:4], [90.0, 90.0, 10.0, 10.0])
    assert np.isnan(y[4:]).all()
    _, y = segment_affect_curve(spans, name="valence")
    np.testing.assert_allclose(y[:4], [20.0, 20.0, 40.0, 40.0])


# ---------------------------------------------------------------------- the gauge widget
def _pixel(widget, x_frac: float) -> QColor:
    bar = widget
    img = bar.grab().toImage()
    left = bar.TITLE_W + bar.END_W
    x = int(left + x_frac * (bar.width() - left - bar.END_W))
    return img.pixelColor(x, bar.height() // 2)


@pytest.mark.gui
def test_gauge_shows_scores_and_goes_grey_on_silence(qtbot) -> None:
    gauge = AffectGauge(("arousal", "valence"))
    qtbot.addWidget(gauge)
    gauge.resize(600, 80)
    gauge.show()
    assert gauge.isVisible()
    assert gauge.values == {"arousal": None, "valence": None}
    gauge.set_affect({"arousal": 0.9, "valence": 0.2})
    assert gauge.values == {"arousal": 0.9, "valence": 0.2}
    assert gauge.texts == {"arousal": "activated", "valence": "negative"}
    arousal = gauge.bars["arousal"]
    assert "0.90" in arousal.toolTip()
    # painted: the arousal track is filled (orange) between the middle and 0.9, empty on the calm side
    filled, empty = _pixel(arousal, 0.7), _pixel(arousal, 0.3)
    assert (filled.red() > 180, filled.green() > 100, filled.blue() < 120) == (True, True, True)
    assert max(empty.red(), empty.green(), empty.blue()) < 60
    gauge.set_affect({})  # silence
    assert gauge.values == {"arousal": None, "valence": None}
    assert gauge.texts == {"arousal": "no speech", "valence": "no speech"}
    assert max(_pixel(arousal, 0.7).getRgb()[:3]) < 60  # the fill is gone


@pytest.mark.gui
def test_gauge_of_a_model_without_affect_is_hidden(qtbot) -> None:
    page = QWidget()
    qtbot.addWidget(page)
    gauge = AffectGauge((), parent=page)
    page.show()
    assert not gauge.isVisible()
    gauge.set_affect({"arousal": 0.5})  # nothing to show, nothing breaks
    assert gauge.values == {}


# ---------------------------------------------------------------------- live view
def _live(qtbot, tmp_path: Path, model: EmotionModel) -> LiveView:
    y = np.concatenate([synth_speechlike(seconds=4.0, seed=11), np.zeros(3 * SR, np.float32)])
    ctl = LiveController(model, factory=array_session_factory(y, SR, speed=4.0))
    view = LiveView(settings=temp_settings(tmp_path), model=model, controller=ctl,
                    device_lister=lambda: ([], None))
    qtbot.addWidget(view)
    view.resize(1280, 860)
    view.show()
    return view


@pytest.mark.gui
def test_live_gauge_and_timeline_follow_the_predictions(qtbot, tmp_path: Path, affect_model: EmotionModel) -> None:
    view = _live(qtbot, tmp_path, affect_model)
    assert view.affect_gauge.isVisible()
    assert view.affect_plot.isVisible()
    shown: list[tuple[Prediction, dict[str, float | None]]] = []
    # the view's own slot runs first (connected first): what the gauge shows after each prediction
    view.controller.prediction.connect(lambda p: shown.append((p, view.affect_gauge.values)))
    assert view.start()
    session = view.controller.session
    qtbot.waitUntil(session.finished.is_set, timeout=30000)
    qtbot.waitUntil(lambda: view.predictions_received == session.stats().predictions, timeout=10000)
    speech = [(p, v) for p, v in shown if p.speech]
    silence = [(p, v) for p, v in shown if not p.speech]
    assert speech
    assert silence
    for p, values in speech:
        assert p.affect.keys() == {"arousal", "valence"}
        assert values == p.affect  # the smoothed scores of that prediction
    assert all(v == {"arousal": None, "valence": None} for _, v in silence)
    assert view.affect_gauge.texts == {"arousal": "no speech", "valence": "no speech"}  # ended in silence
    view.repaint_tick()
    for i, name in enumerate(("arousal", "valence")):
        t, y = view.affect_curves[name].getData()
        assert np.isfinite(y).sum() == len(speech)
        assert np.isnan(y).sum() == len(silence)
        np.testing.assert_allclose(y[np.isfinite(y)], [100 * p.affect[name] for p, _ in speech])
        assert t[-1] == 0.0  # the newest prediction at the right edge
        assert view.affect_curves[name].opts["pen"].color().name() == affect_axis(name, index=i).color.lower()
    view.grab().save(str(tmp_path / "affect_live.png"))  # renders at the default size
    view.stop()


@pytest.mark.gui
def test_live_view_of_a_model_without_affect_shows_none(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    view = _live(qtbot, tmp_path, tiny_model)
    assert view.affect_names == ()
    assert view.affect_gauge.isHidden()
    assert view.affect_plot.isHidden()
    assert view.start()
    qtbot.waitUntil(lambda: view.speech_predictions >= 2, timeout=30000)
    assert view.last_prediction is not None
    assert view.last_prediction.affect == {}
    assert view.affect_gauge.isHidden()
    view.stop()


@pytest.mark.gui
def test_main_window_with_affect_fits_its_default_size(qtbot, tmp_path: Path, affect_model: EmotionModel) -> None:
    from desktop_app.main_window import MainWindow

    w = MainWindow(settings=temp_settings(tmp_path), model=affect_model, device_lister=lambda: ([], None))
    qtbot.addWidget(w)
    w.show()
    assert (w.width(), w.height()) == (1280, 860)
    assert w.minimumSizeHint().height() <= 860  # the gauge and the affect timeline fit without growing it


# ---------------------------------------------------------------------- file view
def _clip(tmp_path: Path) -> Path:
    path = tmp_path / "talk.wav"
    sf.write(str(path), np.concatenate([synth_speechlike(seconds=4.0, seed=12), np.zeros(3 * SR, np.float32)]), SR)
    return path


@pytest.mark.gui
def test_file_view_draws_the_affect_per_window_and_exports_it(qtbot, tmp_path: Path,
                                                              affect_model: EmotionModel) -> None:
    clip = _clip(tmp_path)
    view = file_view(qtbot, tmp_path, affect_model)
    assert view.affect_plot.isVisible()
    assert not run_batch(qtbot, view, [clip])
    view.table.selectRow(0)
    expect = analyze_file(clip, affect_model)  # the engine's result for the same file
    res = view.results[0]
    assert res is not None
    assert res.affect == pytest.approx(expect.affect)
    spans = voiced_timeline(res.segments, res.duration_s, res.speech_spans)
    for name in ("arousal", "valence"):
        x, y = view.affect_curves[name].getData()
        want_x, want_y = segment_affect_curve(spans, name=name)
        np.testing.assert_allclose(x, want_x)
        np.testing.assert_allclose(y, want_y, equal_nan=True)
        assert np.isfinite(y).any()
        assert np.isnan(y).any()  # the silent end
        lean = lean_text(res.affect[name], axis=affect_axis(name))
        assert f"{affect_axis(name).title}</span>: {lean} ({res.affect[name]:.2f})" in view.summary.text()
    table, segs = view.export_csv(tmp_path / "out.csv")
    with table.open(newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["arousal"] == f"{res.affect['arousal']:.4f}"
    assert row["valence"] == f"{res.affect['valence']:.4f}"
    with segs.open(newline="") as fh:
        seg_rows = [r for r in csv.DictReader(fh) if r["kind"] == "segment"]
    assert [r["arousal"] for r in seg_rows] == [f"{s.affect['arousal']:.4f}" if s.speech else ""
                                                for s in res.segments]
    data = json.loads(view.export_json(tmp_path / "out.json").read_text(encoding="utf-8"))
    assert data[0]["valence"] == round(res.affect["valence"], 6)
    assert [s["arousal"] is None for s in data[0]["segments"]] == [not s.speech for s in res.segments]
    view.clear()
    assert all(len(c.getData()[0] if c.getData()[0] is not None else []) == 0 for c in view.affect_curves.values())


@pytest.mark.gui
def test_file_view_of_a_model_without_affect_shows_and_exports_none(qtbot, tmp_path: Path,
                                                                    tiny_model: EmotionModel) -> None:
    clip = _clip(tmp_path)
    view = file_view(qtbot, tmp_path, tiny_model)
    assert view.affect_plot.isHidden()
    assert not run_batch(qtbot, view, [clip])
    view.table.selectRow(0)
    assert "Arousal" not in view.summary.text()
    table, segs = view.export_csv(tmp_path / "out.csv")
    for path in (table, segs):
        with path.open(newline="") as fh:
            head = next(csv.reader(fh))
        assert "arousal" not in head
        assert "valence" not in head
    data = json.loads(view.export_json(tmp_path / "out.json").read_text(encoding="utf-8"))
    assert "arousal" not in data[0]
    assert all("arousal" not in s for s in data[0]["segments"])
