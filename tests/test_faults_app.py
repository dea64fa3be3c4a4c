"""Faults, app side: atomic and private exports, a file table that scales, Cancel and close mid-batch.

Real widgets offscreen, the real shipped model, real corpus speech (copied into tmp as short WAVs,
never into the repository), a real full tmpfs and a real subprocess for closing the window.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from desktop_support import corpus_clips, file_view, run_batch
from privileged import small_tmpfs

from desktop_app.export import ExportError, export_csv, export_json, segments_path_for
from desktop_app.file_view import FileView
from ser_engine.files.analysis import analyze_file
from ser_engine.inference.model import EmotionModel

pytestmark = [pytest.mark.gui, pytest.mark.corpus]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # voice profiles: never the user's


def _view(qtbot, tmp_path: Path, model: EmotionModel) -> FileView:
    return file_view(qtbot, tmp_path, model)


def _run(qtbot, view: FileView, paths: list[Path], timeout: int = 120000) -> bool:
    return run_batch(qtbot, view, paths, timeout)


def make_speech_folder(corpus_dir: Path, folder: Path, n: int, *, seconds: float = 1.5) -> list[Path]:
    """``n`` short WAVs cut from real corpus speech (cycling over a few clips), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for clip in corpus_clips(corpus_dir):
        audio, rate = sf.read(clip, dtype="float32", always_2d=False)
        sources.append((audio[: int(seconds * rate)], rate))
    out = []
    for i in range(n):
        audio, rate = sources[i % len(sources)]
        p = folder / f"clip_{i:04d}.wav"
        sf.write(p, audio, rate, subtype="PCM_16")
        out.append(p)
    return out


def fill_up(folder: Path) -> Path:
    """Write a filler file in ``folder`` until the file system is full; returns it."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 1024)
            except OSError as exc:  # the disk is full (checked below)
                full = exc
                break
    finally:
        os.close(fd)
    assert full.errno == errno.ENOSPC, full
    return filler


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------
# exports: atomic on a full disk, private
# ---------------------------------------------------------------------------
def test_failed_export_on_a_full_disk_keeps_the_earlier_files_and_says_why(
        qtbot, tmp_path: Path, corpus_dir: Path, shipped_model: EmotionModel) -> None:
    clips = corpus_clips(corpus_dir)
    view = _view(qtbot, tmp_path, shipped_model)
    assert _run(qtbot, view, clips) is False
    messages: list[str] = []
    view.message.connect(messages.append)
    with small_tmpfs(tmp_path / "disk", size="1m") as disk:
        csv_path, json_path = disk / "batch.csv", disk / "batch.json"
        assert view.save_csv(csv_path)  # a valid earlier export
        assert view.save_json(json_path)
        before = {p: p.read_bytes() for p in (csv_path, segments_path_for(csv_path), json_path)}
        assert all(before.values())
        _run(qtbot, view, make_speech_folder(corpus_dir, tmp_path / "more", 12))  # a larger export next
        filler = fill_up(disk)
        for save, path in ((view.save_csv, csv_path), (view.save_json, json_path)):
            messages.clear()
            view.export_error_box = None
            assert save(path) is False
            # the previous files are intact, byte for byte, and no temporary file is left behind
            assert {p: p.read_bytes() for p in before} == before
            assert sorted(p.name for p in disk.iterdir()) == sorted([*(p.name for p in before), filler.name])
            # the app says which file and why: status text and a message box
            assert messages
            assert str(path) in messages[-1]
            assert "disk is full" in messages[-1]
            box = view.export_error_box
            assert box is not None
            assert box.isVisible()
            assert str(path) in box.text()
            assert "earlier file" in box.informativeText()
            box.close()
        # once there is room again the same export succeeds and is complete
        filler.unlink()
        assert view.save_json(json_path)
        data = json.loads(json_path.read_text(encoding="utf-8"))
        assert len(data) == len(view.finished_results()) == 4 * len(clips)
        assert view.save_csv(csv_path)
        with csv_path.open(encoding="utf-8") as fh:
            assert len(list(csv.DictReader(fh))) == 4 * len(clips)


def test_export_functions_raise_a_clear_error_and_leave_nothing(tmp_path: Path, corpus_dir: Path,
                                                                 shipped_model: EmotionModel) -> None:
    res = [analyze_file(corpus_clips(corpus_dir)[0], shipped_model)]
    target = tmp_path / "exists.json"
    target.write_text("[]\n")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match=r"Cannot write .*a_file.*"):
        export_json(res, blocker / "out.json")  # the parent is a file, not a folder
    with pytest.raises(ExportError, match="Cannot write"):
        export_csv(res, blocker / "out.csv")
    assert target.read_text() == "[]\n"
    export_json(res, target)
    assert json.loads(target.read_text())[0]["path"] == str(corpus_clips(corpus_dir)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "exists.json"]  # no temporaries


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_exports_are_private_files_in_private_new_folders(tmp_path: Path, corpus_dir: Path,
                                                          shipped_model: EmotionModel, mask: int) -> None:
    res = [analyze_file(c, shipped_model) for c in corpus_clips(corpus_dir)[:2]]
    old = tmp_path / "old.csv"
    old.write_text("earlier\n")
    os.chmod(old, 0o644)
    with umask(mask):
        table, segs = export_csv(res, old)
        out = export_json(res, tmp_path / "new" / "deeper" / "results.json")
    for p in (table, segs, out):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    for d in (tmp_path / "new", tmp_path / "new" / "deeper"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert table.read_text().startswith("path,ok,error")


def test_a_stricter_umask_is_respected(tmp_path: Path, corpus_dir: Path, shipped_model: EmotionModel) -> None:
    res = [analyze_file(corpus_clips(corpus_dir)[0], shipped_model)]
    with umask(0o277):  # owner may not even write: the file is made read-only
        out = export_json(res, tmp_path / "r.json")
    assert stat.S_IMODE(out.stat().st_mode) == 0o400
    assert json.loads(out.read_text())[0]["ok"] is True


def test_non_utf8_file_names_are_exported_as_valid_utf8(qtbot, tmp_path: Path, corpus_dir: Path,
                                                        shipped_model: EmotionModel) -> None:
    src = make_speech_folder(corpus_dir, tmp_path / "src", 1)[0]
    odd = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9_\xff.wav"))
    os.rename(src, odd)
    view = _view(qtbot, tmp_path, shipped_model)
    _run(qtbot, view, [odd])
    assert view.results[0] is not None
    assert view.results[0].ok
    assert view.save_csv(tmp_path / "t.csv")
    assert view.save_json(tmp_path / "t.json")
    for p in (tmp_path / "t.csv", tmp_path / "t_segments.csv"):
        text = p.read_bytes().decode("utf-8")  # valid UTF-8, or this raises
        assert "caf\\xe9_\\xff.wav" in text
    data = json.loads((tmp_path / "t.json").read_bytes().decode("utf-8"))
    assert data[0]["ok"] is True
    assert data[0]["path"].endswith("caf\\xe9_\\xff.wav")


# ---------------------------------------------------------------------------
# the table at scale: batched updates, heartbeat, Cancel, close
# ---------------------------------------------------------------------------
def test_a_200_file_batch_inserts_rows_once_and_the_gui_keeps_ticking(qtbot, tmp_path: Path, corpus_dir: Path,
                                                                    shipped_model: EmotionModel) -> None:
    n = 200
    folder = tmp_path / "many"
    make_speech_folder(corpus_dir, folder, n)
    view = _view(qtbot, tmp_path, shipped_model)
    inserts: list[tuple[int, int]] = []
    view.table_model.rowsInserted.connect(lambda _p, a, b: inserts.append((a, b)))
    ticks: list[float] = []
    from PySide6.QtCore import QTimer

    heartbeat = QTimer()
    heartbeat.setInterval(20)
    heartbeat.timeout.connect(lambda: ticks.append(time.monotonic()))
    heartbeat.start()
    t0 = time.monotonic()
    assert _run(qtbot, view, [folder]) is False
    t1 = time.monotonic()
    heartbeat.stop()
    assert inserts == [(0, n - 1)]  # the whole folder arrived as one insertion, not row by row
    assert view.table.rowCount() == n
    assert all(r is not None and r.ok for r in view.results)
    assert [view.table.item(r, 5).text() for r in range(n)] == ["ok"] * n
    # rows are the engine's results for those files (spot checks)
    for r in (0, 57, n - 1):
        res = view.results[r]
        assert res == analyze_file(view.paths[r], shipped_model)
        assert float(view.table.item(r, 1).text()) == pytest.approx(res.duration_s, abs=0.01)
    assert view.progress.value() == n
    # the heartbeat kept ticking through the batch (a generous bound: the GUI never stalled for 0.5 s)
    edges = np.diff([t0, *[t for t in ticks if t <= t1], t1])
    assert len(ticks) > 5, f"the GUI thread was blocked for {edges.max():.2f} s"
    assert edges.max() < 0.5, f"the GUI thread was blocked for {edges.max():.2f} s"
    # the batch over, the first result is shown; a row selected by the user shows its result
    assert view.table.currentRow() == 0
    assert view.paths[0].name in view.summary.text()
    view.table.selectRow(42)
    assert view.paths[42].name in view.summary.text()


def test_cancel_returns_at_once_and_the_batch_stops(qtbot, tmp_path: Path, corpus_dir: Path,
                                                    shipped_model: EmotionModel) -> None:
    n = 200
    folder = tmp_path / "many"
    make_speech_folder(corpus_dir, folder, n)
    view = _view(qtbot, tmp_path, shipped_model)
    finished: list[bool] = []
    view.batch_finished.connect(finished.append)
    view.add_paths([folder])
    qtbot.waitUntil(lambda: sum(r is not None for r in view.results) >= 5, timeout=60000)
    worker = view.worker
    assert worker is not None
    assert not worker.done
    view.cancel()
    # Cancel answered synchronously: the batch is over for the user, the buttons are back
    assert finished == [True]
    assert not view.busy
    assert view.open_files_button.isEnabled()
    assert not view.cancel_button.isEnabled()
    assert worker.cancel_event.is_set()
    statuses = [view.table.item(r, 5).text() for r in range(n)]
    assert "queued" not in statuses
    assert statuses.count("ok") >= 5
    assert sum(s.endswith("cancelled") for s in statuses) >= 1
    # the threads stop soon after, and nothing more reaches the table
    qtbot.waitUntil(lambda: worker.done, timeout=10000)
    snapshot = list(view.results)
    qtbot.wait(400)
    assert view.results == snapshot
    assert view.table.rowCount() == n
    assert not view.retired_workers or all(w.done for w in view.retired_workers)
    # the next batch works normally
    extra = make_speech_folder(corpus_dir, tmp_path / "extra", 3)
    assert _run(qtbot, view, extra) is False
    assert view.table.rowCount() == n + 3
    assert [view.table.item(r, 5).text() for r in range(n, n + 3)] == ["ok"] * 3


def test_closing_the_window_mid_batch_exits_cleanly(tmp_path: Path, corpus_dir: Path,
                                                    shipped_model_dir: Path) -> None:
    folder = tmp_path / "many"
    make_speech_folder(corpus_dir, folder, 300, seconds=4.0)
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT / "tests")!r})
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from pathlib import Path
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from desktop_support import no_devices, temp_settings
        from desktop_app.main_window import MainWindow
        from ser_engine.inference.model import EmotionModel
        app = QApplication([])
        w = MainWindow(settings=temp_settings(Path({str(tmp_path)!r})),
                       model=EmotionModel.load(Path({str(shipped_model_dir)!r})), device_lister=no_devices)
        w.show()
        w.files.add_paths([Path({str(folder)!r})])
        def poll():
            n = 0
            try:
                n = sum(r is not None for r in w.files.results)
                if n < 3 and w.files.busy:
                    return
                assert w.files.busy, "the batch ended before the window was closed"
                t = time.monotonic()
                w.close()
                print(f"closed after {{n}} results in {{time.monotonic() - t:.3f}} s", flush=True)
            finally:
                if n >= 3 or not w.files.busy:
                    timer.stop()
                    app.quit()
        timer = QTimer()
        timer.setInterval(5)
        timer.timeout.connect(poll)
        timer.start()
        app.exec()
        del w
        print("exited", flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Destroyed while thread" not in proc.stderr
    assert "closed after" in proc.stdout
    assert "exited" in proc.stdout


def test_a_truncated_file_shows_as_partial_in_table_panel_and_exports(qtbot, capsys, tmp_path: Path,
                                                                       corpus_dir: Path,
                                                                       shipped_model_dir: Path,
                                                                       shipped_model: EmotionModel) -> None:
    from ser_engine.cli.main import main as ser_main

    speech = np.concatenate([sf.read(c, dtype="float32")[0] for c in corpus_clips(corpus_dir)[:3]])
    cut = tmp_path / "cut.flac"
    sf.write(cut, speech, 16000)
    with cut.open("r+b") as fh:
        fh.truncate(int(cut.stat().st_size * 0.6))
    whole = make_speech_folder(corpus_dir, tmp_path / "whole", 1)[0]
    view = _view(qtbot, tmp_path, shipped_model)
    _run(qtbot, view, [cut, whole])
    res = view.results[0]
    assert res is not None
    assert res.ok
    assert res.warning
    assert res.warning.startswith("decoding stopped at")
    assert view.results[1] is not None
    assert view.results[1].warning is None
    status = view.table.item(0, 5)
    assert status.text() == f"ok, partial: {res.warning}"
    assert status.toolTip() == res.warning
    assert view.table.item(1, 5).text() == "ok"
    view.table.selectRow(0)
    assert "partial result" in view.summary.text()
    assert "decoding stopped at" in view.summary.text()
    # the exports carry the warning exactly as `ser analyze` does (last column)
    table_path, seg_path = view.export_csv(tmp_path / "p.csv")
    capsys.readouterr()
    args = [str(cut), str(whole), "--model", str(shipped_model_dir), "--workers", "1"]
    ser_main(["analyze", *args, "--format", "csv"])
    assert table_path.read_text(encoding="utf-8").splitlines() == capsys.readouterr().out.splitlines()
    ser_main(["analyze", *args, "--format", "csv", "--segments"])
    assert seg_path.read_text(encoding="utf-8").splitlines() == capsys.readouterr().out.splitlines()
    with table_path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["warning"] == res.warning
    assert rows[1]["warning"] == ""
    data = json.loads(view.export_json(tmp_path / "p.json").read_text(encoding="utf-8"))
    assert data[0]["warning"] == res.warning
    assert data[1]["warning"] is None


def test_a_fifo_in_a_folder_is_a_row_error_and_the_batch_finishes(qtbot, tmp_path: Path, corpus_dir: Path,
                                                                   shipped_model: EmotionModel) -> None:
    folder = tmp_path / "mixed"
    good = make_speech_folder(corpus_dir, folder, 2)
    fifo = folder / "blocking.wav"
    os.mkfifo(fifo)
    view = _view(qtbot, tmp_path, shipped_model)
    assert _run(qtbot, view, [folder, fifo], timeout=30000) is False  # never hangs on the FIFO
    rows = {p.name: r for r, p in enumerate(view.paths)}
    assert set(rows) == {fifo.name, *(g.name for g in good)}
    status = view.table.item(rows[fifo.name], 5)
    assert status.text().startswith("error:")
    assert fifo.name not in status.text()  # the cell gives the reason; the row and tooltip name the file
    assert fifo.name in status.toolTip()
    assert all(view.table.item(rows[g.name], 5).text() == "ok" for g in good)


@pytest.mark.parametrize(("sig", "code"), [(2, 130), (15, 143)])
def test_ctrl_c_and_sigterm_close_the_app_like_its_close_button(tmp_path: Path, sig: int, code: int) -> None:
    """Qt's event loop would ignore Ctrl-C in the terminal; the app closes (settings saved) at once."""
    import signal

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SER_APP_REPORT_READY="1",
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    proc = subprocess.Popen([sys.executable, "-m", "desktop_app.main"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"ready")
        proc.send_signal(signal.Signals(sig))
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code
    # closed through the window's closeEvent: the geometry was written to the settings file
    ini = tmp_path / "config" / "ser" / "ser-app.ini"
    assert ini.is_file()
    assert "geometry" in ini.read_text()
