"""``ser-app --self-test``: the real window offscreen, the live path and file mode, end to end.

Checks, in order: the model loads; the main window builds; a synthetic
speech-like signal and a real-format one (44.1 kHz stereo 16-bit, as a sound
card delivers it) go through the app's live path: the engine's own
:class:`~ser_engine.live.session.LiveSession` worker (resampler, streamer, model) fed
by an :class:`~ser_engine.live.inputs.ArrayInput` in place of the sound card, its
predictions reaching the live view through queued Qt signals; a WAV file and
an undecodable file go through file mode (the batch finishes, the good file
has a timeline, the bad one its error); the JSON export reads back. Prints
each check and what failed; exit code 0 only when everything passed.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ser_engine.logs import FILE_ONLY, get_logger

__all__ = ["run_self_test", "synth_speech"]

log = get_logger("app")


def synth_speech(*, seconds: float, sample_rate: int = 16000, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Make a voiced, syllable-modulated harmonic signal (float32 mono, shape ``(n,)``)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    sig = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.5
    y = sig * envelope + rng.normal(0, 0.01, n)
    y = y / (np.abs(y).max() + 1e-9) * level
    out: np.ndarray = np.asarray(y, dtype=np.float32)
    return out


def _wait(app: object, cond: Callable[[], bool], timeout: float) -> bool:
    from PySide6.QtWidgets import QApplication

    assert isinstance(app, QApplication)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if cond():
            return True
        time.sleep(0.01)
    app.processEvents()
    return cond()


def run_self_test(*, model_dir: Path | None = None) -> int:
    """Run every check.

    An unexpected error fails the self-test: its traceback goes to stderr (the
    self-test is for diagnosis) and to the log file.

    Parameters
    ----------
    model_dir : Path or None
        The model's folder (None: the bundled model).

    Returns
    -------
    int
        The exit code: 0 when every check passed.
    """
    try:
        return _run(model_dir)
    except Exception as exc:
        import traceback

        log.exception("self-test stopped by an unexpected error", extra=FILE_ONLY)
        traceback.print_exc()
        print(f"self-test FAILED: unexpected error {type(exc).__name__}: {exc}", flush=True)
        return 1


def _run(model_dir: Path | None) -> int:
    import soundfile as sf
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop_app.live_controller import array_session_factory
    from desktop_app.main_window import MainWindow, load_model
    from desktop_app.settings import AppSettings
    from desktop_app.theme import apply_theme
    from ser_engine.live.inputs import ArrayInput
    from ser_engine.live.session import LiveSession

    failures: list[str] = []

    def check(name: str, ok: bool, detail: str = "") -> bool:
        print(f"[{'ok' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""), flush=True)
        if not ok:
            failures.append(f"{name}: {detail}" if detail else name)
        return ok

    app = QApplication.instance() or QApplication(["ser-app", "-platform", "offscreen"])
    assert isinstance(app, QApplication)
    apply_theme(app)
    model, error = load_model(model_dir)
    if not check("model loads", model is not None, error or (model.name if model else "")):
        return 1
    assert model is not None
    with tempfile.TemporaryDirectory(prefix="ser-self-test-") as tmp_s:
        tmp = Path(tmp_s)
        store = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        settings = AppSettings(store)
        sr = model.feature_config.sample_rate
        # 4 s of speech-like signal then 4.5 s of near-silence
        synth = np.concatenate([synth_speech(seconds=4.0, sample_rate=sr),
                                np.random.default_rng(1).normal(0, 1e-4, int(4.5 * sr)).astype(np.float32)])
        window = MainWindow(settings=settings, model=model,
                            session_factory=array_session_factory(synth, sr, speed=4.0),
                            device_lister=lambda: ([], None))
        window.show()
        check("main window builds", window.isVisible() and window.live is not None and window.files is not None)

        def live_run(name: str, *, expect_silence: bool) -> None:
            live = window.live
            started = live.start()
            if not check(f"{name}: live session starts", started, live.banner.text()):
                return
            session = live.controller.session if live.controller else None
            real = isinstance(session, LiveSession) and isinstance(session.input, ArrayInput)
            if not check(f"{name}: the engine's live worker runs", real, type(session).__name__):
                return
            assert isinstance(session, LiveSession)
            _wait(app, session.finished.is_set, 20)
            check(f"{name}: the live worker ends cleanly", session.finished.is_set() and session.error is None,
                  str(session.error or ""))
            _wait(app, lambda: False, 0.3)  # deliver queued signals
            live.repaint_tick()
            check(f"{name}: predictions reach the window", live.predictions_received >= 5,
                  f"{live.predictions_received} predictions")
            check(f"{name}: speech detected", live.speech_predictions > 0, f"{live.speech_predictions} speech steps")
            if expect_silence:
                check(f"{name}: silence shows the no-speech state",
                      live.silence_predictions > 0 and live.emotion.state == "no_speech",
                      f"{live.silence_predictions} silent steps, display state {live.emotion.state}")
            xs = live.wave_curve.getData()[0]
            check(f"{name}: waveform drawn", xs is not None and len(xs) > 0)
            live.stop()

        live_run("synthetic 16 kHz mono", expect_silence=True)
        # real format: 44.1 kHz, stereo, 16-bit PCM as a sound card or a WAV delivers it
        rate = 44100
        mono = synth_speech(seconds=4.0, sample_rate=rate, seed=3)
        stereo = np.stack([mono, 0.8 * mono], axis=1)
        wav44 = tmp / "real_format.wav"
        sf.write(str(wav44), stereo, rate, subtype="PCM_16")
        pcm, got_rate = sf.read(str(wav44), dtype="float32")
        window.live.controller.factory = array_session_factory(pcm, got_rate, speed=4.0)  # type: ignore[union-attr]
        live_run("real format 44.1 kHz stereo 16-bit", expect_silence=False)

        # file mode: one good file, one undecodable file
        good = tmp / "speech.wav"
        sf.write(str(good), synth_speech(seconds=5.0, sample_rate=sr, seed=5), sr, subtype="PCM_16")
        bad = tmp / "broken.wav"
        bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio")
        done: list[bool] = []
        window.files.batch_finished.connect(lambda cancelled: done.append(cancelled))
        window.files.add_paths([good, bad])
        _wait(app, lambda: bool(done), 60)
        if check("file mode: batch finishes", bool(done)):
            results = {r.path.name: r for r in window.files.finished_results()}
            g, b = results.get("speech.wav"), results.get("broken.wav")
            check("file mode: good file analysed", g is not None and g.ok and len(g.segments) > 0,
                  "" if g is None else (g.error or f"{len(g.segments)} segments, label {g.label}"))
            bad_ok = b is not None and not b.ok and "broken.wav" in (b.error or "")
            check("file mode: bad file reports its error", bad_ok,
                  "" if b is None else str(b.error))
            out = window.files.export_json(tmp / "export.json")
            data = json.loads(out.read_text(encoding="utf-8"))
            check("file mode: JSON export reads back", len(data) == 2 and {"path", "label", "segments"} <= set(data[0]))
        window.close()
        app.processEvents()
    if failures:
        print(f"self-test FAILED ({len(failures)}):", *failures, sep="\n  ", flush=True)
        return 1
    print("self-test passed", flush=True)
    return 0
