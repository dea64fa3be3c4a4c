"""Screenshots of the real app (offscreen) for docs/screenshots/: live mode with real speech, file mode with a batch.

Live mode records from the default input: the script starts the tests' private
PulseAudio daemon (``tests/private_pulse.py``: a null sink ``vmic`` whose monitor is
the default source, nothing reaches the user's sound server) and plays corpus speech
into it with ``paplay``. Both shots are taken at the app's default window size. File mode analyses real
clips from ../shared/data/ser. Nothing from the corpora is written to the
repository, only the PNGs.

Run: ``python tools/screenshots.py [--model-dir models] [--out docs/screenshots]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

LIVE_CLIPS = [  # played back to back into the virtual microphone, with pauses
    "ravdess/Actor_01/03-01-05-02-01-01-01.flac",
    "tess/OAF_neutral/OAF_back_neutral.ogg",
    "tess/YAF_pleasant_surprised/YAF_back_ps.ogg",
    "ravdess/Actor_12/03-01-04-02-01-01-12.flac",
    "tess/YAF_angry/YAF_back_angry.ogg",
    "ravdess/Actor_07/03-01-03-02-02-01-07.flac",
]
FILE_CLIPS = [
    "ravdess/Actor_01/03-01-05-02-01-01-01.flac",
    "ravdess/Actor_12/03-01-04-02-01-01-12.flac",
    "ravdess/Actor_07/03-01-03-02-02-01-07.flac",
    "crema-d/1001_IEO_HAP_HI.ogg",
    "crema-d/1012_TIE_SAD_XX.ogg",
    "tess/OAF_neutral/OAF_back_neutral.ogg",
    "tess/YAF_pleasant_surprised/YAF_back_ps.ogg",
    "savee/KL_f01.flac",
]


def main() -> int:
    """Take the live and the file-mode screenshots; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", type=Path, default=ROOT / "models")
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "ser")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = p.parse_args()

    sys.path.insert(0, str(ROOT / "tests"))
    from private_pulse import start_private_pulse  # before PortAudio starts: it reads the variables once

    pulse, why = start_private_pulse()
    if why is not None:
        print(f"the private PulseAudio daemon did not start: {why}", file=sys.stderr)
        return 1
    try:
        return _shoot(args)
    finally:
        pulse.stop()


def _shoot(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_app.main_window import MainWindow, load_model
    from desktop_app.settings import AppSettings
    from desktop_app.theme import apply_theme
    from ser_engine.dsp.audio import load_audio

    app = QApplication(["ser-app"])
    apply_theme(app)
    model, err = load_model(args.model_dir)
    if model is None:
        print(err, file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="ser-shots-"))
    settings = AppSettings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings=settings, model=model)
    w.resize(1280, 860)  # the app's default size (MainWindow without a saved geometry)
    w.show()

    def wait(seconds: float, cond=None) -> None:
        loop = QEventLoop()
        end = time.monotonic() + seconds
        t = QTimer()
        t.setInterval(50)
        t.timeout.connect(lambda: loop.quit() if time.monotonic() >= end or (cond and cond()) else None)
        t.start()
        loop.exec()
        t.stop()

    args.out.mkdir(parents=True, exist_ok=True)
    # ------------------------------------------------------------- live
    rate = model.feature_config.sample_rate
    pause = np.zeros(int(0.8 * rate), np.float32)
    track = np.concatenate([x for c in LIVE_CLIPS for x in (load_audio(args.corpus / c, sample_rate=rate).samples,
                                                               pause)])
    wav = tmp / "live.wav"
    sf.write(str(wav), track, rate, subtype="PCM_16")
    w.tabs.setCurrentWidget(w.live)
    if not w.live.start():
        print("live mode did not start:", w.live.banner.text(), file=sys.stderr)
        return 1
    wait(1.0)
    proc = subprocess.Popen(["paplay", "-d", "vmic", str(wav)])
    # grab while speech is on: after most of the track, at a moment the display shows an emotion
    t_end = time.monotonic() + len(track) / rate
    wait(len(track) / rate - 6.0)
    wait(6.0, cond=lambda: w.live.emotion.state == "emotion" and w.live.meter.level_db > -35)
    w.grab().save(str(args.out / "live.png"))
    print("live:", w.live.emotion.title.text(), w.live.emotion.detail.text(), flush=True)
    wait(max(0.0, t_end - time.monotonic()) + 0.5)
    proc.wait(timeout=30)
    w.live.stop()
    # ------------------------------------------------------------- files
    w.tabs.setCurrentWidget(w.files)
    done: list[bool] = []
    w.files.batch_finished.connect(done.append)
    # a longer recording: real clips with pauses between them (temporary file, not kept)
    gap = np.zeros(int(3.5 * rate), np.float32)
    session = np.concatenate([x for c in LIVE_CLIPS[:4] for x in (load_audio(args.corpus / c, sample_rate=rate).samples,
                                                                 gap)])
    session_path = tmp / "session-recording.wav"
    sf.write(str(session_path), session, rate, subtype="PCM_16")
    w.files.add_paths([session_path, *(args.corpus / c for c in FILE_CLIPS)])
    wait(120, cond=lambda: bool(done))
    w.files.table.selectRow(0)
    wait(2.0, cond=lambda: w.files.loaded_samples is not None)
    w.files.play_from(5.0)
    wait(1.2)
    w.grab().save(str(args.out / "files.png"))
    w.files.player.stop()
    w.close()
    print("wrote", args.out / "live.png", args.out / "files.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
