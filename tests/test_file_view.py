"""File mode on real corpus clips: table, timeline, summary, exports, bad files, cancel, drop."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from desktop_support import corpus_clips, file_view, no_devices, run_batch, temp_settings
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QStyle

from desktop_app.file_view import COLUMNS, FileView, error_reason, timeline_spans, voiced_timeline
from desktop_app.palette import label_text
from ser_engine.files.analysis import Segment, analyze_file
from ser_engine.files.export import FILE_COLUMNS
from ser_engine.inference.model import EmotionModel

pytestmark = [pytest.mark.gui, pytest.mark.corpus]


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # voice profiles: never the user's


def _view(qtbot, tmp_path: Path, model: EmotionModel) -> FileView:
    return file_view(qtbot, tmp_path, model)


def _run(qtbot, view: FileView, paths: list[Path], timeout: int = 60000) -> bool:
    return run_batch(qtbot, view, paths, timeout)


def _cell(view: FileView, row: int, col: int) -> str:
    item = view.table.item(row, col)
    return "" if item is None else item.text()


def test_batch_fills_table_timeline_and_exports(qtbot, capsys, tmp_path: Path, corpus_dir: Path,
                                                tiny_model_dir: Path, tiny_model: EmotionModel) -> None:
    clips = corpus_clips(corpus_dir)
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is a text file, not a recording\n")
    missing = tmp_path / "missing.flac"
    view = _view(qtbot, tmp_path, tiny_model)
    cancelled = _run(qtbot, view, [*clips, bad, missing])
    assert not cancelled
    assert view.table.rowCount() == len(clips) + 2
    assert [view.table.horizontalHeaderItem(i).text() for i in range(len(COLUMNS))] == list(COLUMNS)

    rows = {view.paths[i].name: i for i in range(view.table.rowCount())}
    for clip in clips:
        expect = analyze_file(clip, tiny_model)  # the engine's own result for the same file
        assert expect.ok
        assert expect.label is not None
        r = rows[clip.name]
        assert _cell(view, r, 0) == clip.name
        assert float(_cell(view, r, 1)) == pytest.approx(expect.duration_s, abs=0.01)
        assert _cell(view, r, 2) == label_text(expect.label)
        assert float(_cell(view, r, 3)) == pytest.approx(100 * (expect.confidence or 0), abs=0.5)
        assert float(_cell(view, r, 4)) == pytest.approx(expect.speech_s, abs=0.01)
        assert _cell(view, r, 5) == "ok"
    # failing files: their row says why (the reason; the file is in its own column), the batch still finished
    assert _cell(view, rows["not_audio.wav"], 5) == "error: not an audio file (it contains text)"
    assert _cell(view, rows["missing.flac"], 5) == "error: file not found"
    assert view.table.item(rows["missing.flac"], 5).toolTip() == f"{missing}: file not found"

    # the detail pane: select a clip -> timeline spans cover its duration, waveform loads
    r0 = rows[clips[0].name]
    view.table.selectRow(r0)
    res = view.results[r0]
    assert res is not None
    assert view.timeline_bars is not None
    spans = view.timeline_spans
    assert spans[0][0] == pytest.approx(0.0, abs=1e-6)
    assert spans[-1][1] == pytest.approx(res.duration_s, abs=1e-3)
    # coloured only where the voice is: RAVDESS clips open with silence, shown as no speech
    assert res.speech_spans
    assert res.speech_spans[0][0] > 0.2
    assert spans[0][2] is None
    voiced = sum(b - a for a, b, seg in spans if seg is not None)
    assert voiced == pytest.approx(res.speech_s, abs=0.02)
    assert voiced < res.duration_s - 0.2
    assert label_text(res.label) in view.summary.text()
    assert np.allclose(view.distribution.values, [100 * res.probabilities[lab] for lab in tiny_model.labels])
    qtbot.waitUntil(lambda: view.loaded_samples is not None, timeout=10000)
    xs, ys = view.wave_curve.getData()
    assert xs is not None
    assert xs.max() == pytest.approx(res.duration_s, abs=0.05)
    assert np.abs(ys).max() > 0.01  # real speech, not silence

    # exports: byte for byte what `ser analyze` writes for the same paths (one exporter)
    from ser_engine.cli.main import main as ser_main

    paths = [str(p) for p in [*clips, bad, missing]]
    json_path = view.export_json(tmp_path / "out.json")
    data = json.loads(json_path.read_text())
    assert len(data) == len(clips) + 2
    capsys.readouterr()
    ser_main(["analyze", *paths, "--model", str(tiny_model_dir), "--format", "json", "--segments", "--workers", "1"])
    assert json_path.read_bytes() == capsys.readouterr().out.encode("utf-8")
    by_name = {Path(d["path"]).name: d for d in data}
    assert by_name["not_audio.wav"]["ok"] is False
    assert "not_audio.wav" in by_name["not_audio.wav"]["error"]
    assert len(by_name[clips[0].name]["segments"]) >= 2

    table_path, seg_path = view.export_csv(tmp_path / "out.csv")
    ser_main(["analyze", *paths, "--model", str(tiny_model_dir), "--format", "csv", "--workers", "1"])
    cli_table = capsys.readouterr().out
    ser_main(["analyze", *paths, "--model", str(tiny_model_dir), "--format", "csv", "--segments", "--workers", "1"])
    cli_segments = capsys.readouterr().out
    assert table_path.read_bytes() == cli_table.encode("utf-8")
    assert seg_path.read_bytes() == cli_segments.encode("utf-8")
    with table_path.open() as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0].keys()) == [*FILE_COLUMNS, *(f"p_{lab}" for lab in tiny_model.labels), "warning"]
    for row in table:
        d = by_name[Path(row["path"]).name]
        assert row["ok"] == str(int(d["ok"]))
        if d["ok"]:
            assert row["label"] == d["label"]
            assert float(row["confidence"]) == pytest.approx(d["confidence"], abs=1e-4)
    with seg_path.open() as fh:
        segs = list(csv.DictReader(fh))
    assert list(segs[0].keys()) == [
        *FILE_COLUMNS, *(f"p_{lab}" for lab in tiny_model.labels), "warning", "kind", "start_s", "end_s", "speech"
    ]
    assert len(segs) == sum(len(d["segments"]) for d in data) + len(data)  # + one file row per file


def test_cancel_stops_a_folder_batch(qtbot, tmp_path: Path, corpus_dir: Path, tiny_model: EmotionModel) -> None:
    folder = corpus_dir / "ravdess" / "Actor_03"
    n_files = len(list(folder.glob("*.flac")))
    view = _view(qtbot, tmp_path, tiny_model)
    with qtbot.waitSignal(view.batch_finished, timeout=60000) as blocker:
        view.add_paths([folder])
        qtbot.waitUntil(lambda: sum(r is not None for r in view.results) >= 2, timeout=30000)
        assert view.cancel_button.isEnabled()
        view.cancel()
    assert blocker.args[0] is True
    assert view.table.rowCount() == n_files  # the folder was expanded into its files
    statuses = [_cell(view, r, 5) for r in range(n_files)]
    assert statuses.count("ok") >= 2
    assert any(s.endswith("cancelled") for s in statuses)
    assert "queued" not in statuses
    assert not view.busy
    assert view.open_files_button.isEnabled()


def test_dropped_files_are_analysed(qtbot, tmp_path: Path, corpus_dir: Path, tiny_model: EmotionModel) -> None:
    clip = corpus_clips(corpus_dir)[2]
    view = _view(qtbot, tmp_path, tiny_model)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(clip))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(view.batch_finished, timeout=30000):
        view.dropEvent(event)
    assert view.table.rowCount() == 1
    assert _cell(view, 0, 5) == "ok"


def test_timeline_spans_partition_overlapping_windows() -> None:
    segs = [Segment(0.0, 3.0, True, "sad", {"sad": 0.9}), Segment(0.5, 3.5, False, None, {}),
            Segment(1.0, 4.0, True, "angry", {"angry": 0.6}), Segment(1.2, 4.2, True, "angry", {"angry": 0.7})]
    spans = timeline_spans(segs, 4.2)
    assert [round(a, 3) for a, _, _ in spans] == [0.0, 1.75, 2.25, 2.6]
    assert spans[-1][1] == pytest.approx(4.2)
    assert all(b > a for a, b, _ in spans)
    assert [s.label for _, _, s in spans] == ["sad", None, "angry", "angry"]
    assert timeline_spans([], 1.0) == []


def test_voiced_timeline_colours_only_the_voice() -> None:
    sad, silent = Segment(0.0, 3.0, True, "sad", {"sad": 0.9}), Segment(0.5, 3.5, False, None, {})
    angry = Segment(1.0, 4.0, True, "angry", {"angry": 0.6})
    pieces = voiced_timeline([sad, silent, angry], 4.1, [(0.4, 1.0), (1.2, 1.6), (2.5, 3.9)])
    # window spans: sad 0-1.75, silent 1.75-2.25, angry 2.25-4.1; cut at the voiced spans' edges
    want = [(0.0, 0.4, None), (0.4, 1.0, sad), (1.0, 1.2, None), (1.2, 1.6, sad), (1.6, 2.5, None),
            (2.5, 3.9, angry), (3.9, 4.1, None)]
    assert [(round(a, 6), round(b, 6), s) for a, b, s in pieces] == want
    assert voiced_timeline([sad], 3.0, []) == [(0.0, 3.0, None)]  # a speech window without voiced frames


def test_gui_thread_stays_responsive_during_a_batch(qtbot, tmp_path: Path, corpus_dir: Path,
                                                    tiny_model: EmotionModel) -> None:
    """Analysis runs off the GUI thread: a 20 ms timer keeps firing while a folder is analysed."""
    import time

    from PySide6.QtCore import QTimer

    view = _view(qtbot, tmp_path, tiny_model)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    t_start = time.monotonic()
    with qtbot.waitSignal(view.batch_finished, timeout=120000):
        view.add_paths([corpus_dir / "ravdess" / "Actor_04", corpus_dir / "ravdess" / "Actor_05"])
    t_end = time.monotonic()
    timer.stop()
    assert len(view.finished_results()) == 120
    assert all(r.ok for r in view.finished_results())
    # the timer kept firing from the start of the batch to its end: no gap of half a second or more
    edges = np.diff([t_start, *[t for t in ticks if t <= t_end], t_end])
    assert edges.max() < 0.5, f"the GUI thread was blocked for {edges.max():.2f} s"


# ---------------------------------------------------------------------------
# voice profile and "uncertain"
# ---------------------------------------------------------------------------
SPEAKER_1001_NEUTRAL = ["1001_DFA_NEU_XX.ogg", "1001_IEO_NEU_XX.ogg", "1001_IOM_NEU_XX.ogg",
                        "1001_ITH_NEU_XX.ogg", "1001_ITS_NEU_XX.ogg", "1001_IWL_NEU_XX.ogg"]


def _speaker_profile(corpus_dir: Path, model: EmotionModel, store_dir: Path, name: str = "Speaker 1001"):
    """Make a real profile from six neutral CREMA-D sentences of speaker 1001, saved in a private store."""
    from ser_engine.inference.profile import ProfileStore, profile_from_files

    prof = profile_from_files([corpus_dir / "crema-d" / n for n in SPEAKER_1001_NEUTRAL], model=model, name=name)
    store = ProfileStore(store_dir)
    return store, store.save(prof), prof


def _threshold_model(src: Path, dst: Path, threshold: float) -> EmotionModel:
    """Copy the shipped model to ``dst`` with another uncertainty threshold."""
    import shutil

    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    meta["uncertainty_threshold"] = threshold
    (dst / "model.json").write_text(json.dumps(meta))
    return EmotionModel.load(dst)


def test_voice_profile_checkbox_applies_the_profile_to_files(qtbot, tmp_path: Path, corpus_dir: Path,
                                                             shipped_model: EmotionModel) -> None:
    from desktop_app.profiles import ProfileManager

    store, path, prof = _speaker_profile(corpus_dir, shipped_model, tmp_path / "profiles")
    settings = temp_settings(tmp_path)
    profiles = ProfileManager(settings=settings, model=shipped_model, store=store)
    view = FileView(settings=settings, model=shipped_model, profiles=profiles)
    qtbot.addWidget(view)
    view.show()
    # no active profile: the box says how to get one and cannot be ticked
    assert not view.profile_box.isEnabled()
    assert "calibrate in the Live tab" in view.profile_box.text()
    profiles.set_active(path)
    assert view.profile_box.isEnabled()
    assert view.profile_box.text() == "Use voice profile: Speaker 1001"
    assert not view.profile_box.isChecked()
    clips = [corpus_dir / "crema-d" / "1001_IEO_HAP_HI.ogg", corpus_dir / "crema-d" / "1001_DFA_ANG_XX.ogg"]
    _run(qtbot, view, clips)
    view.profile_box.setChecked(True)
    assert temp_settings(tmp_path).files_use_profile is True  # persisted in the settings model
    _run(qtbot, view, clips)
    plain, calibrated = view.results[:2], view.results[2:]
    for clip, a, b in zip(clips, plain, calibrated, strict=True):
        assert a is not None
        assert b is not None
        assert a.ok
        assert b.ok
        assert a.probabilities == analyze_file(clip, shipped_model).probabilities
        assert b.probabilities == analyze_file(clip, shipped_model.with_profile(prof)).probabilities
        diff = max(abs(a.probabilities[k] - b.probabilities[k]) for k in shipped_model.labels)
        assert diff > 0.01, f"the profile changed nothing for {clip.name}"
    assert [_cell(view, r, 5) for r in range(4)] == ["ok", "ok", "ok (voice profile: Speaker 1001)",
                                                     "ok (voice profile: Speaker 1001)"]
    view.table.selectRow(2)
    assert "voice profile: Speaker 1001" in view.summary.text()
    # a new view (app restart) keeps the box ticked
    view2 = FileView(settings=temp_settings(tmp_path), model=shipped_model,
                     profiles=ProfileManager(settings=temp_settings(tmp_path), model=shipped_model, store=store))
    qtbot.addWidget(view2)
    assert view2.profile_box.isChecked()
    assert view2.analysis_model()[1] == "Speaker 1001"


def test_uncertain_results_in_table_summary_and_exports(qtbot, capsys, tmp_path: Path, corpus_dir: Path,
                                                        shipped_model_dir: Path) -> None:
    from desktop_app.file_view import result_label_text
    from desktop_app.palette import UNCERTAIN_COLOR
    from ser_engine.cli.main import main as ser_main

    model_dir = tmp_path / "strict-model"
    model = _threshold_model(shipped_model_dir, model_dir, 0.99)  # nearly every result is uncertain
    clips = corpus_clips(corpus_dir)[:2]
    view = _view(qtbot, tmp_path, model)
    _run(qtbot, view, clips)
    for r, clip in enumerate(clips):
        res = view.results[r]
        assert res is not None
        assert res.ok
        assert res.uncertain
        assert res.label is not None
        assert res == analyze_file(clip, model)
        assert _cell(view, r, 2) == f"uncertain ({res.label}?)" == result_label_text(res.label, True)
        assert view.table.item(r, 2).foreground().color().name().upper() == UNCERTAIN_COLOR
        assert float(_cell(view, r, 3)) == pytest.approx(100 * res.confidence, abs=0.5)  # confidence still shown
    view.table.selectRow(0)
    assert "Uncertain" in view.summary.text()
    assert f"perhaps {view.results[0].label}" in view.summary.text()
    assert view.distribution.values.sum() == pytest.approx(100.0, abs=0.5)  # the bars are still shown
    # exports carry the engine's flag exactly as `ser analyze` does
    paths = [str(c) for c in clips]
    data = json.loads(view.export_json(tmp_path / "u.json").read_text())
    assert all(d["uncertain"] is True for d in data)
    capsys.readouterr()
    ser_main(["analyze", *paths, "--model", str(model_dir), "--format", "json", "--segments"])
    assert data == json.loads(capsys.readouterr().out)
    table_path, seg_path = view.export_csv(tmp_path / "u.csv")
    ser_main(["analyze", *paths, "--model", str(model_dir), "--format", "csv"])
    assert table_path.read_text().splitlines() == capsys.readouterr().out.splitlines()
    ser_main(["analyze", *paths, "--model", str(model_dir), "--format", "csv", "--segments"])
    assert seg_path.read_text().splitlines() == capsys.readouterr().out.splitlines()
    with table_path.open() as fh:
        assert [row["uncertain"] for row in csv.DictReader(fh)] == ["1", "1"]


def test_empty_files_tab_says_what_to_do(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    from desktop_app.file_view import EMPTY_TABLE_TEXT

    view = _view(qtbot, tmp_path, tiny_model)
    assert view.progress.text() == EMPTY_TABLE_TEXT
    assert "0 / 1" not in view.progress.text()
    assert "Open files" in view.progress.text()
    assert not view.batch_summary.isVisible()


def test_batch_summary_persists_filters_failed_and_shows_full_errors(qtbot, tmp_path: Path, corpus_dir: Path,
                                                                   tiny_model: EmotionModel) -> None:
    import soundfile as sf

    from desktop_app.file_view import EMPTY_TABLE_TEXT

    clips = corpus_clips(corpus_dir)
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is a text file, not a recording\n")
    missing = tmp_path / "missing.flac"
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000 * 3, np.float32), 16000)  # three seconds of digital silence
    view = _view(qtbot, tmp_path, tiny_model)
    assert not _run(qtbot, view, [*clips, bad, quiet, missing])
    assert view.progress.text() == f"{len(clips) + 3} / {len(clips) + 3} files"

    counts = view.batch_counts()
    expect_ok = sum(1 for r in view.results if r is not None and r.ok and r.label is not None)
    assert (counts.ok, counts.failed, counts.no_speech) == (expect_ok, 2, 1)
    assert expect_ok == len(clips)
    text = view.batch_summary.text()
    assert view.batch_summary.isVisible()
    assert f"{len(clips)} ok" in text
    assert "2 failed" in text
    assert "1 no speech" in text
    qtbot.wait(9000)  # longer than the status bar's 8 s message: the summary stays
    assert view.batch_summary.isVisible()
    assert view.batch_summary.text() == text

    # "show failed only": exactly the two failed rows remain
    failed_rows = sorted(i for i, r in enumerate(view.results) if r is not None and not r.ok)
    assert {view.paths[i].name for i in failed_rows} == {"not_audio.wav", "missing.flac"}
    assert view.failed_only_box.isEnabled()
    view.failed_only_box.setChecked(True)
    assert view.visible_rows() == failed_rows
    view.failed_only_box.setChecked(False)
    assert view.visible_rows() == list(range(len(view.results)))

    # the full error on hover (every cell of the row) and in the side panel
    row = view.paths.index(bad)
    error = view.results[row].error
    assert error
    assert "not_audio.wav" in error
    model = view.table_model
    for col in range(len(COLUMNS)):
        tip = model.data(model.index(row, col), Qt.ItemDataRole.ToolTipRole)
        assert tip is not None
        assert error in tip
    ok_row = view.paths.index(clips[0])
    assert model.data(model.index(ok_row, 5), Qt.ItemDataRole.ToolTipRole) is None
    view.failed_only_box.setChecked(True)
    view.table.selectRow(row)
    assert "could not be analysed" in view.summary.text()
    import html as _html

    assert _html.escape(error) in view.summary.text()

    # a later batch while filtered: its good rows arrive hidden, its failures shown
    bad2 = tmp_path / "also_bad.mp3"
    bad2.write_bytes(b"\x00" * 100)
    assert not _run(qtbot, view, [clips[0], bad2])
    hidden_new = view.table.isRowHidden(len(view.results) - 2) or view.table.isRowHidden(len(view.results) - 1)
    assert hidden_new
    assert {view.paths[i].name for i in view.visible_rows()} == {"not_audio.wav", "missing.flac", "also_bad.mp3"}
    assert "3 failed" in view.batch_summary.text()

    view.clear()
    assert view.progress.text() == EMPTY_TABLE_TEXT
    assert not view.batch_summary.isVisible()
    assert not view.failed_only_box.isChecked()


def test_a_bug_in_the_batch_is_shown_with_the_log_file_and_the_view_stays_usable(
        qtbot, tmp_path: Path, corpus_dir: Path, tiny_model: EmotionModel, monkeypatch: pytest.MonkeyPatch) -> None:
    from ser_engine.cli.common import start_logging
    from ser_engine.dsp.features import Featurizer

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = start_logging(verbose=False)  # as the app does at start-up
    assert log == tmp_path / "state" / "ser" / "ser.log"

    def buggy_normalize(*_: object) -> np.ndarray:
        raise TypeError("unsupported operand type(s) for -: 'NoneType' and 'float'")

    clips = corpus_clips(corpus_dir)
    view = _view(qtbot, tmp_path, tiny_model)
    with monkeypatch.context() as patch:
        patch.setattr(Featurizer, "normalize", buggy_normalize)
        assert not _run(qtbot, view, clips)
    summary = view.batch_summary.text()
    assert "Analysis stopped by an internal error" in summary
    assert "TypeError: unsupported operand type(s)" in summary
    assert f"details in {log}" in summary
    assert view.batch_summary.isVisible()
    # no clip is reported as a bad file: each says the batch stopped
    statuses = [_cell(view, r, 5) for r in range(len(clips))]
    assert all("not analysed: the batch stopped (TypeError" in s for s in statuses), statuses
    text = log.read_text(encoding="utf-8")
    assert "file analysis stopped" in text
    assert "Traceback (most recent call last)" in text
    assert "in buggy_normalize" in text
    # the view stays usable: the next batch (the bug gone) is analysed
    assert not view.busy
    assert view.open_files_button.isEnabled()
    assert not _run(qtbot, view, clips[:2])
    assert [_cell(view, r, 5) for r in range(len(clips), len(clips) + 2)] == ["ok", "ok"]
    assert "Analysis finished" in view.batch_summary.text()


# ---------------------------------------------------------------------------
# the window at its default size: readable errors, room for the table
# ---------------------------------------------------------------------------
def test_error_reason_drops_the_file_the_message_starts_with() -> None:
    import os

    p = Path("/data/session 1/take.wav")
    assert error_reason(p, "/data/session 1/take.wav: file not found") == "file not found"
    assert error_reason(p, "take.wav: empty file (0 bytes)") == "empty file (0 bytes)"
    # named twice (a message wrapped again): both go; a colon inside the reason stays
    assert error_reason(p, "take.wav: /data/session 1/take.wav: cannot read (a: b)") == "cannot read (a: b)"
    # not starting with the file: whole
    assert error_reason(p, "the batch stopped: take.wav") == "the batch stopped: take.wav"
    assert error_reason(p, "/data/session 1/take.wav.bak: file not found") == (
        "/data/session 1/take.wav.bak: file not found")
    assert error_reason(p, "/data/session 1/take.wav:") == "/data/session 1/take.wav:"  # nothing would be left
    # a name that is not UTF-8, as the engine writes it (backslash escapes)
    odd = Path(os.fsdecode(b"/data/caf\xe9.wav"))
    assert error_reason(odd, "/data/caf\\xe9.wav: not an audio file (it contains text)") == (
        "not an audio file (it contains text)")


def _bad_files(folder: Path, n: int) -> list[Path]:
    """Write ``n`` files named .wav/.flac/.mp3 that are not audio (garbage, text, cut headers, empty)."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True)
    out = []
    for i in range(n):
        kind = i % 4
        p = folder / f"bad_{i:02d}.{('wav', 'wav', 'wav', 'flac')[kind]}"
        if kind == 0:
            p.write_bytes(rng.bytes(4000))  # random bytes
        elif kind == 1:
            p.write_text("a text file, not a recording\n")
        elif kind == 2:
            p.write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + rng.bytes(200))  # a WAV header cut short
        else:
            p.write_bytes(b"")
        out.append(p)
    return out


def _visible_rows(view: FileView) -> int:
    """Rows the table's viewport holds: its height over a row's height (every row has the default height)."""
    return view.table.viewport().height() // view.table.verticalHeader().defaultSectionSize()


def test_default_window_shows_error_reasons_and_many_rows(qtbot, tmp_path: Path, tiny_model: EmotionModel) -> None:
    from desktop_app.main_window import MainWindow

    files = _bad_files(tmp_path / "deep" / "folder" / "of" / "recordings", 20)
    w = MainWindow(settings=temp_settings(tmp_path), model=tiny_model, device_lister=no_devices)
    qtbot.addWidget(w)
    w.tabs.setCurrentWidget(w.files)
    w.show()
    qtbot.waitExposed(w)
    assert (w.width(), w.height()) == (1280, 860)  # the default size (no saved geometry)
    view = w.files
    assert not run_batch(qtbot, view, files)
    assert view.table.rowCount() == len(files)
    table, model = view.table, view.table_model
    assert all(table.rowHeight(row) == table.verticalHeader().defaultSectionSize() for row in range(len(files)))

    # nothing analysed, nothing selected: the detail folds to its tab bar, the table takes the height
    assert not table.selectionModel().hasSelection()
    qtbot.waitUntil(lambda: _visible_rows(view) >= 15, timeout=5000)
    assert table.visualRect(model.index(14, 0)).bottom() < table.viewport().height()  # row 15 is on screen
    assert view.detail_tabs.tabBar().isVisible()  # the batch chart is one click away

    # each error cell: the reason, not the path; the whole message on hover; the reason fits its cell
    status = COLUMNS.index("Status")
    margin = table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    fm = table.fontMetrics()
    reasons = set()
    for row, path in enumerate(view.paths):
        res = view.results[row]
        assert res is not None
        assert not res.ok
        assert res.error
        assert res.error.startswith(f"{path}: ")  # what the engine says names the file...
        cell = table.item(row, status)
        text = cell.text()
        reason = text.removeprefix("error: ")
        assert text == f"error: {reason}"
        assert res.error == f"{path}: {reason}"  # ...the cell says the rest
        assert path.name not in text
        assert "recordings" not in text
        assert cell.toolTip() == res.error
        assert model.data(model.index(row, status), Qt.ItemDataRole.ToolTipRole) == res.error
        assert table.item(row, 0).text() == path.name
        rect = table.visualRect(model.index(row, status))
        assert rect.right() < table.viewport().width()  # no scrolling to reach the reason
        assert fm.horizontalAdvance(text) + 2 * margin <= rect.width(), (text, rect.width())
        reasons.add(reason)
    assert len(reasons) == 4  # four kinds of bad file, four different reasons
    assert table.horizontalScrollBar().maximum() == 0

    # a selected file opens the detail (its plots need the height); Clear folds it again
    folded_rows = _visible_rows(view)
    table.selectRow(0)
    qtbot.waitUntil(lambda: view.detail_tabs.height() >= 250, timeout=5000)
    assert view.detail_tabs.currentIndex() == 0
    assert _visible_rows(view) < folded_rows
    assert "could not be analysed" in view.summary.text()
    view.clear()
    qtbot.waitUntil(lambda: _visible_rows(view) == folded_rows, timeout=5000)
    assert view.detail_tabs.height() < 60

    # choosing the batch chart opens it with nothing selected
    view.detail_tabs.setCurrentWidget(view.batch_chart)
    qtbot.waitUntil(lambda: view.batch_chart.height() >= view.batch_chart.minimumHeight(), timeout=5000)
    assert view.batch_chart.isVisible()
    view.detail_tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: _visible_rows(view) == folded_rows, timeout=5000)
