"""The Files tab's batch summary chart: its counts are the table's, on synthetic results and a real batch."""

from __future__ import annotations

import itertools
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from desktop_support import corpus_clips, file_view, run_batch
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QFileDialog

from desktop_app.batch_chart import (
    CONFIDENCE_BINS,
    DEFAULT_PNG_NAME,
    FAILED,
    NO_SPEECH,
    UNCERTAIN,
    BatchChart,
    confidence_bin_edges,
    summarize_batch,
)
from desktop_app.file_view import COLUMNS, BatchCounts, FileView
from desktop_app.palette import emotion_color, label_text
from ser_engine.files.analysis import FileResult
from ser_engine.inference.model import EmotionModel

LABELS = ("angry", "happy", "sad")


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # voice profiles: never the user's


def _res(label: str | None = None, conf: float | None = None, *, ok: bool = True,
         uncertain: bool = False) -> FileResult:
    return FileResult(path=Path("x.wav"), ok=ok, error=None if ok else "x.wav: broken", duration_s=2.0,
                      speech_s=1.0 if label else 0.0, label=label, confidence=conf, uncertain=uncertain)


def test_summary_counts_files_as_the_table_labels_them() -> None:
    results = [
        _res("angry", 0.8), _res("angry", 1.0), _res("sad", 0.55),
        _res("angry", 0.3, uncertain=True),  # "uncertain (angry?)" in the table: not an Angry file
        _res(None), _res(ok=False), None,
        _res("calm", 0.0),  # a label the model list does not name: added after them
    ]
    s = summarize_batch(results, LABELS)
    assert s.labels == ("angry", "happy", "sad", "calm")
    assert s.emotions == {"angry": 2, "happy": 0, "sad": 1, "calm": 1}
    assert (s.uncertain, s.no_speech, s.failed, s.pending) == (1, 1, 1, 1)
    counts = BatchCounts.of(results)  # the batch summary line's numbers
    assert (s.ok, s.failed, s.no_speech) == (counts.ok, counts.failed, counts.no_speech)
    assert s.finished == 7
    # ten bins over [0, 1]: 0.0 in the first, 0.3 in the fourth, 0.55 in the sixth, 0.8 and 1.0 in the last two
    assert s.bin_edges[0] == 0.0
    assert s.bin_edges[-1] == 1.0
    assert len(s.bin_edges) == 11
    assert s.confidence_counts == (1, 0, 0, 1, 0, 1, 0, 0, 1, 1)
    assert sum(s.confidence_counts) == s.ok
    assert s.categories() == [("Angry", 2), ("Happy", 0), ("Sad", 1), ("Calm", 1),
                              (UNCERTAIN, 1), (NO_SPEECH, 1), (FAILED, 1)]
    empty = summarize_batch([], LABELS)
    assert empty.ok == empty.finished == 0
    assert sum(empty.confidence_counts) == 0


def _table_categories(view: FileView) -> Counter[str]:
    """Read the table's "Dominant emotion" column, cell by cell, as the chart's categories."""
    out: Counter[str] = Counter()
    col = COLUMNS.index("Dominant emotion")
    for row in range(view.table.rowCount()):
        text = view.table.item(row, col).text()
        status = view.table.item(row, COLUMNS.index("Status")).text()
        if status.startswith("error:"):
            assert text == ""
            out[FAILED] += 1
        elif text == "no speech":
            out[NO_SPEECH] += 1
        elif text.startswith("uncertain ("):
            out[UNCERTAIN] += 1
        else:
            out[text] += 1
    return out


def _assert_chart_matches_table(view: FileView) -> None:
    chart = view.batch_chart
    shown = chart.displayed_counts()
    table = _table_categories(view)
    assert {k: v for k, v in shown.items() if v} == dict(table)
    assert set(shown) >= {label_text(lab) for lab in view.labels} | {UNCERTAIN, NO_SPEECH, FAILED}
    counts = view.batch_counts()
    assert sum(v for k, v in shown.items() if k not in (NO_SPEECH, FAILED)) == counts.ok
    assert (shown[NO_SPEECH], shown[FAILED]) == (counts.no_speech, counts.failed)
    # the histogram holds every file with speech, each in the bin of its confidence; the model's
    # threshold is a bin edge
    conf = [r.confidence for r in view.results if r is not None and r.ok and r.label is not None]
    edges = chart.summary.bin_edges
    assert view.model.metadata.uncertainty_threshold in edges
    expect = np.histogram(np.clip(conf, 0, 1), bins=edges)[0]  # [a, b) bins, the last one [a, 1]
    assert chart.displayed_histogram() == expect.tolist()
    assert sum(expect) == counts.ok
    assert f"{counts.ok} with speech" in chart.title.text()


@pytest.mark.gui
@pytest.mark.corpus
def test_chart_counts_equal_the_table_after_real_batches(qtbot, tmp_path: Path, corpus_dir: Path,
                                                         shipped_model: EmotionModel) -> None:
    clips = corpus_clips(corpus_dir)
    more = sorted((corpus_dir / "ravdess" / "Actor_03").glob("*.flac"))[::6][:8]  # calm-ish: often uncertain
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is a text file, not a recording\n")
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000 * 3, np.float32), 16000)
    view = file_view(qtbot, tmp_path, shipped_model)
    assert view.detail_tabs.currentIndex() == 0
    assert not view.batch_chart.isVisible()

    # a batch while the chart's tab is hidden: counted when the tab is shown
    assert not run_batch(qtbot, view, [*clips, bad])
    view.detail_tabs.setCurrentWidget(view.batch_chart)
    assert view.batch_chart.isVisible()
    _assert_chart_matches_table(view)
    assert view.batch_chart.displayed_counts()[FAILED] == 1

    # a second batch with the chart shown: updated as the rows arrive, and it adds up with the first
    assert not run_batch(qtbot, view, [*more, quiet])
    assert view.table.rowCount() == len(clips) + 1 + len(more) + 1
    _assert_chart_matches_table(view)
    shown = view.batch_chart.displayed_counts()
    assert shown[NO_SPEECH] == 1
    assert shown[FAILED] == 1
    assert sum(shown.values()) == view.table.rowCount()
    assert "with speech" in view.batch_chart.title.text()
    assert view.batch_chart.export_button.isEnabled()

    # clicking a row shows that file again
    view.table.scrollToTop()
    rect = view.table.visualRect(view.table_model.index(0, 0))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert view.detail_tabs.currentIndex() == 0

    view.clear()
    view.detail_tabs.setCurrentWidget(view.batch_chart)
    assert set(view.batch_chart.displayed_counts().values()) == {0}
    assert sum(view.batch_chart.displayed_histogram()) == 0
    assert not view.batch_chart.export_button.isEnabled()


def _colour_present(image: QImage, hex_colour: str) -> bool:
    want = QColor(hex_colour).rgb() & 0xFFFFFF
    step = 2
    return any((image.pixel(x, y) & 0xFFFFFF) == want
               for y in range(0, image.height(), step) for x in range(0, image.width(), step))


@pytest.mark.gui
@pytest.mark.corpus
def test_export_png_is_the_chart_and_a_failed_write_is_reported(qtbot, tmp_path: Path, corpus_dir: Path,
                                                                 shipped_model: EmotionModel,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    view = file_view(qtbot, tmp_path, shipped_model)
    view.detail_tabs.setCurrentWidget(view.batch_chart)
    assert not view.batch_chart.export_button.isEnabled()
    assert not run_batch(qtbot, view, corpus_clips(corpus_dir))
    chart = view.batch_chart

    # the button: a save dialog in the last folder, named batch_summary.png by default
    (tmp_path / "last").mkdir()
    view.settings.last_folder = str(tmp_path / "last")
    target = tmp_path / "charts" / "new" / "summary"  # no suffix typed: .png is added
    asked: list[str] = []

    def fake_dialog(*args: object, **_kw: object) -> tuple[str, str]:
        asked.append(str(args[2]))
        return str(target), "PNG image (*.png)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake_dialog)
    messages: list[str] = []
    view.message.connect(messages.append)
    qtbot.mouseClick(chart.export_button, Qt.MouseButton.LeftButton)
    assert asked == [str(tmp_path / "last" / DEFAULT_PNG_NAME)]
    out = target.with_suffix(".png")
    assert messages
    assert str(out) in messages[-1]

    image = QImage(str(out))
    assert not image.isNull()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dpr = chart.plots.devicePixelRatioF()
    assert (image.width(), image.height()) == (round(chart.plots.width() * dpr), round(chart.plots.height() * dpr))
    # the bars are in the image, in the palette's colours
    for name, n in chart.displayed_counts().items():
        lab = name.lower()
        if n and lab in view.labels:
            assert _colour_present(image, emotion_color(lab)), name
    mode = stat.S_IMODE(out.stat().st_mode)
    assert mode & 0o077 == 0  # private, as the other exports
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left

    # an unwritable target: a message, not a crash; nothing left behind; the app goes on
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert not chart.export_png(blocker / DEFAULT_PNG_NAME)
    assert chart.export_error_box is not None
    assert chart.export_error_box.isVisible()
    assert str(blocker / DEFAULT_PNG_NAME) in chart.export_error_box.text()
    assert messages[-1].startswith("Cannot write")
    chart.export_error_box.close()
    a_dir = out.parent / "taken.png"
    a_dir.mkdir()  # the name is a folder: the rename fails after the temporary was written
    assert not chart.export_png(a_dir)
    assert sorted(p.name for p in a_dir.parent.iterdir()) == sorted([out.name, "taken.png"])
    assert a_dir.is_dir()
    assert not any(a_dir.iterdir())
    chart.export_error_box.close()
    assert chart.export_png(out)  # still works
    assert not QImage(str(out)).isNull()


@pytest.mark.gui
def test_chart_widget_alone_counts_when_shown(qtbot) -> None:
    chart = BatchChart(LABELS, uncertainty_threshold=0.45)
    qtbot.addWidget(chart)
    rows: list[FileResult | None] = [None, None, None]
    chart.set_results(rows)  # hidden: not counted yet
    assert chart.displayed_counts()[UNCERTAIN] == 0
    rows[0], rows[1] = _res("sad", 0.9), _res("happy", 0.2, uncertain=True)
    chart.resize(900, 400)
    chart.show()
    qtbot.waitExposed(chart)
    shown = chart.displayed_counts()
    assert (shown["Sad"], shown[UNCERTAIN], shown["Happy"]) == (1, 1, 0)
    assert "2 of 3 files analysed" in chart.title.text()
    assert chart.threshold_line is not None
    assert chart.threshold_line.value() == pytest.approx(45)


def _spread_results(threshold: float) -> list[FileResult | None]:
    """Files with speech at confidences across [0, 1], at the threshold and a hair either side of it."""
    confs = [*np.linspace(0.0, 1.0, 101), threshold, np.nextafter(threshold, 0.0), np.nextafter(threshold, 1.0)]
    rows: list[FileResult | None] = [
        _res(LABELS[i % len(LABELS)], float(c), uncertain=bool(c < threshold)) for i, c in enumerate(confs)
    ]
    return [*rows, _res(None), _res(ok=False), None]  # no speech, failed, pending: not in the histogram


@pytest.mark.gui
@pytest.mark.parametrize("threshold", [0.29, 0.45, 0.5, 0.123, 0.01, 0.999])
def test_no_histogram_bar_straddles_the_threshold_line(qtbot, threshold: float) -> None:
    chart = BatchChart(LABELS, uncertainty_threshold=threshold)
    qtbot.addWidget(chart)
    rows = _spread_results(threshold)
    chart.set_results(rows)
    chart.resize(900, 400)
    chart.show()
    qtbot.waitExposed(chart)
    n_speech = sum(1 for r in rows if r is not None and r.ok and r.label is not None)
    n_uncertain = sum(1 for r in rows if r is not None and r.uncertain)
    line = 100 * threshold
    assert chart.threshold_line is not None
    assert chart.threshold_line.value() == pytest.approx(line)

    # the bins: the threshold is one of the edges, no bin has it strictly inside, about 1/10 wide each
    edges = chart.summary.bin_edges
    assert edges[0] == 0.0
    assert edges[-1] == 1.0
    assert threshold in edges
    assert not any(a < threshold < b for a, b in itertools.pairwise(edges))
    widths = np.diff(edges)
    assert widths.min() > 0
    assert widths.max() <= 1.5 / CONFIDENCE_BINS

    # the bars as drawn: none from left of the line to right of it, every file with speech counted once
    bars = chart.displayed_bars()
    assert len(bars) == len(edges) - 1
    assert not [(a, b) for a, b, _ in bars if a < line < b]
    assert sum(n for _, _, n in bars) == n_speech
    # left of the line: exactly the uncertain files (the table's "uncertain (…?)" rows)
    assert sum(n for _, b, n in bars if b <= line) == n_uncertain == chart.displayed_counts()[UNCERTAIN]
    # each file in the bin of its confidence: [left, right), 1 in the last bin
    conf = [r.confidence for r in rows if r is not None and r.ok and r.label is not None]
    assert chart.displayed_histogram() == np.histogram(conf, bins=edges)[0].tolist()


def test_bin_edges_put_the_threshold_on_an_edge_and_count_it_confident() -> None:
    assert confidence_bin_edges(None) == pytest.approx(np.linspace(0, 1, 11))
    assert confidence_bin_edges(0.5) == pytest.approx(np.linspace(0, 1, 11))  # on the grid: the grid
    for bad in (0.0, 1.0, -0.2, 1.5):  # no threshold inside (0, 1): plain bins
        assert confidence_bin_edges(bad) == pytest.approx(np.linspace(0, 1, 11))
    edges = confidence_bin_edges(0.29)
    assert 0.29 in edges
    assert len(edges) == 11
    s = summarize_batch([_res("sad", 0.29), _res("sad", 0.2899, uncertain=True), _res("sad", 1.0)], LABELS,
                        threshold=0.29)
    k = s.bin_edges.index(0.29)
    assert s.confidence_counts[k - 1] == 1  # just below: the last bin left of the line
    assert s.confidence_counts[k] == 1  # at the threshold: confident, the first bin right of it
    assert s.confidence_counts[-1] == 1  # 1.0: in the last bin
    assert sum(s.confidence_counts) == s.ok == 3
