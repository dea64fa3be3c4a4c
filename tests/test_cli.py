"""The `ser` CLI, run as a real process: exit codes, formats, errors, cold start, live."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import ROOT, VirtualMic, synth_speechlike
from tiny_model import TRADEOFF
from waiting import ProcessOutput

from ser_engine.inference.model import EmotionModel
from ser_engine.inference.profile import VoiceProfile
from ser_engine.inference.profile_check import HeldOutCheck

SR = 16000
KEYS = ["path", "ok", "error", "duration_s", "speech_s", "label", "confidence", "uncertain", "probabilities",
        "segments", "warning"]
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
                    "07": "disgust", "08": "surprised"}


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("SER_MODEL_DIR", None)
    return e


def ser(*args: str | Path, timeout: float = 120, extra_env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    e = env()
    e.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "ser_engine.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=ROOT)


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr, p.stderr
    assert "Traceback" not in p.stdout, p.stderr


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    out = {
        "good": d / "good.wav",
        "good2": d / "sub" / "good2.flac",
        "silence": d / "silence.wav",
        "empty": d / "empty.wav",
        "text": d / "notes.wav",
        "random": d / "random.wav",
        "truncated": d / "truncated.wav",
        "nan": d / "nan.wav",
    }
    sf.write(str(out["good"]), synth_speechlike(seconds=4.0, seed=1), SR)
    sf.write(str(out["good2"]), synth_speechlike(seconds=2.0, seed=2, sample_rate=22050), 22050)
    sf.write(str(out["silence"]), np.zeros(3 * SR, np.float32), SR)
    out["empty"].write_bytes(b"")
    out["text"].write_text("this is not audio\n" * 20)
    out["random"].write_bytes(np.random.default_rng(0).bytes(4096))
    out["truncated"].write_bytes(out["good"].read_bytes()[:40])
    y = synth_speechlike(seconds=1.0)
    y[10] = np.inf
    sf.write(str(out["nan"]), y, SR, subtype="FLOAT")
    return out


def test_version_and_usage() -> None:
    p = ser("--version")
    assert p.returncode == 0
    assert p.stdout.strip().startswith("ser ")
    p = ser("analyze")
    assert p.returncode == 2
    assert "ser: error" in p.stderr
    p = ser("analyze", "x.wav", "--workers", "0")
    assert p.returncode == 2
    assert "at least 1" in p.stderr
    p = ser()
    assert p.returncode == 2
    no_traceback(p)


def test_analyze_batch_reports_every_file_and_fails_on_bad_ones(tiny_model_dir: Path, files: dict[str, Path]) -> None:
    p = ser("analyze", "--model", tiny_model_dir, "--format", "json", files["good"].parent, "--progress", "always")
    no_traceback(p)
    assert p.returncode == 1
    data = json.loads(p.stdout)
    assert all(list(d) == KEYS for d in data)
    by_name = {Path(d["path"]).name: d for d in data}
    assert set(by_name) == {f.name for f in files.values()}
    assert by_name["good.wav"]["ok"]
    assert by_name["good.wav"]["label"]
    assert by_name["good2.flac"]["ok"]
    assert by_name["good2.flac"]["duration_s"] == pytest.approx(2.0, abs=0.01)
    sil = by_name["silence.wav"]
    assert sil["ok"]
    assert sil["label"] is None
    assert sil["speech_s"] == 0
    reasons = {"empty.wav": "empty file", "notes.wav": "contains text", "random.wav": "unrecognised",
               "truncated.wav": "corrupt or truncated WAV", "nan.wav": "NaN or infinite"}
    for name, reason in reasons.items():
        assert not by_name[name]["ok"]
        assert reason in by_name[name]["error"]
        # stderr names the file and the reason
        assert any(name in line and reason in line for line in p.stderr.splitlines()), p.stderr
    assert "files" in p.stderr  # the progress bar


def test_all_good_exits_zero_with_table_and_segments(tiny_model_dir: Path, files: dict[str, Path]) -> None:
    p = ser("analyze", "--model", tiny_model_dir, files["good"], files["silence"], "--segments")
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:3] == ["file", "duration", "speech"]
    assert any("good.wav" in line and "4.00s" in line for line in lines)
    assert any("silence.wav" in line and "no speech" in line for line in lines)
    assert sum("speech " in line and "-" in line.split()[0] for line in lines) >= 3  # segment rows
    assert p.stderr == ""  # no progress bar when stderr is not a terminal


def test_csv_formats(tiny_model_dir: Path, files: dict[str, Path]) -> None:
    p = ser("analyze", "--model", tiny_model_dir, "--format", "csv", files["good"], files["empty"])
    assert p.returncode == 1
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [r["ok"] for r in rows] == ["1", "0"]
    assert rows[0]["label"]
    assert float(rows[0]["confidence"]) > 0
    assert "p_angry" in rows[0]
    assert "empty file" in rows[1]["error"]
    p = ser("analyze", "--model", tiny_model_dir, "--format", "csv", "--segments", "--window", "2", "--hop", "1",
            files["good"])
    assert p.returncode == 0
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [(r["kind"], r["start_s"], r["end_s"]) for r in rows] == [
        ("file", "", ""), ("segment", "0.000", "2.000"), ("segment", "1.000", "3.000"), ("segment", "2.000", "4.000")]


def test_segments_csv_keeps_the_file_rows_in_their_columns(tiny_model_dir: Path, files: dict[str, Path]) -> None:
    paths = [files["good"], files["good2"], files["empty"]]
    plain = ser("analyze", "--model", tiny_model_dir, "--format", "csv", "--workers", "1", *paths)
    seg = ser("analyze", "--model", tiny_model_dir, "--format", "csv", "--segments", "--workers", "1", *paths)
    assert plain.returncode == seg.returncode == 1  # the empty file failed in both
    plain_rows = list(csv.reader(io.StringIO(plain.stdout)))
    seg_rows = list(csv.reader(io.StringIO(seg.stdout)))
    width = len(plain_rows[0])
    # the header and every file row are the plain CSV's, column for column, then kind/start_s/end_s/speech
    assert seg_rows[0] == [*plain_rows[0], "kind", "start_s", "end_s", "speech"]
    file_rows = [r for r in seg_rows[1:] if r[width] == "file"]
    assert [r[:width] for r in file_rows] == plain_rows[1:]
    assert all(r[width + 1:] == ["", "", ""] for r in file_rows)
    # each file row comes first, then that file's windows; the failed file has its file row only
    rows = list(csv.DictReader(io.StringIO(seg.stdout)))
    assert {r["kind"] for r in rows} == {"file", "segment"}
    by_path: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_path.setdefault(r["path"], []).append(r)
    for path, group in by_path.items():
        assert group[0]["kind"] == "file", path
        assert all(r["kind"] == "segment" for r in group[1:]), path
    empty = by_path[str(files["empty"])]
    assert len(empty) == 1
    assert empty[0]["ok"] == "0"
    assert "empty file" in empty[0]["error"]
    good = by_path[str(files["good"])]
    assert len(good) >= 3
    assert float(good[-1]["end_s"]) == pytest.approx(4.0, abs=0.01)
    for r in good[1:]:
        assert r["ok"] == r["error"] == r["duration_s"] == ""
        if r["speech"] == "1":  # the label's probability is the window's confidence
            assert r["label"]
            assert r["confidence"] == r[f"p_{r['label']}"]
        else:
            assert r["label"] == r["confidence"] == ""
    assert "kind (file or segment)" in " ".join(ser("analyze", "--help").stdout.split())


def test_folder_without_audio_and_missing_path(tiny_model_dir: Path, tmp_path: Path, files: dict[str, Path]) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    p = ser("analyze", "--model", tiny_model_dir, tmp_path / "docs", tmp_path / "missing.wav", files["good"])
    no_traceback(p)
    assert p.returncode == 1
    assert "docs: no audio files found" in p.stderr
    assert "missing.wav: file not found" in p.stderr
    assert "good.wav" in p.stdout


def test_non_ascii_path(tiny_model_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "données" / "élan – 喜.wav"
    f.parent.mkdir()
    sf.write(str(f), synth_speechlike(seconds=3.2), SR)
    p = ser("analyze", "--model", tiny_model_dir, "--format", "json", f.parent)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["path"] == str(f)


@pytest.mark.parametrize("case", ["missing dir", "missing onnx", "corrupt onnx", "labels disagree", "shape disagrees"])
def test_bad_model(tiny_model_dir: Path, tmp_path: Path, files: dict[str, Path], case: str) -> None:
    d = tmp_path / "model"
    if case != "missing dir":
        shutil.copytree(tiny_model_dir, d)
    if case == "missing onnx":
        (d / "model.onnx").unlink()
    elif case == "corrupt onnx":
        (d / "model.onnx").write_bytes(b"\x08\x07garbage" * 100)
    elif case in ("labels disagree", "shape disagrees"):
        meta = json.loads((d / "model.json").read_text())
        if case == "labels disagree":
            meta["labels"] = meta["labels"][:-1]
        else:
            meta["input_shape"] = [None, None, 40]
        (d / "model.json").write_text(json.dumps(meta))
    p = ser("analyze", "--model", d, files["good"])
    no_traceback(p)
    assert p.returncode == 1
    assert str(d) in p.stderr
    assert p.stdout == ""
    expected = {"missing dir": "model directory not found", "missing onnx": "model file not found",
                "corrupt onnx": "not a loadable ONNX model", "labels disagree": "labels",
                "shape disagrees": "input_shape"}[case]
    assert expected in p.stderr


def test_broken_installation_is_one_line_not_a_traceback(tiny_model_dir: Path, files: dict[str, Path],
                                                         tmp_path: Path) -> None:
    shim = tmp_path / "shim" / "onnxruntime"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('onnxruntime shared library missing')\n")
    e = env()
    e["PYTHONPATH"] = str(shim.parent) + os.pathsep + e["PYTHONPATH"]
    p = subprocess.run([sys.executable, "-m", "ser_engine.cli", "analyze", "--model", str(tiny_model_dir),
                        str(files["good"])], capture_output=True, text=True, env=e, cwd=ROOT, timeout=120)
    no_traceback(p)
    assert p.returncode == 1
    assert "required package is missing or broken" in p.stderr


def test_cold_start_imports_no_tensorflow_librosa_or_numba(tiny_model_dir: Path, files: dict[str, Path]) -> None:
    code = (
        "import sys\n"
        "from ser_engine.cli.main import main\n"
        f"rc = main(['analyze', '--model', {str(tiny_model_dir)!r}, {str(files['good'])!r}])\n"
        "names = ('tensorflow', 'keras', 'librosa', 'numba', 'torch', 'PySide6')\n"
        "heavy = sorted(m for m in names if m in sys.modules)\n"
        "print('HEAVY', heavy, 'RC', rc)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120)
    assert "HEAVY [] RC 0" in p.stdout, p.stdout + p.stderr


@pytest.mark.usefixtures("virtual_mic")
def test_info_and_devices(tiny_model_dir: Path) -> None:
    p = ser("info", "--model", tiny_model_dir)
    assert p.returncode == 0
    assert "angry" in p.stdout
    assert "297 frames" in p.stdout
    assert "trained on             not recorded" in p.stdout  # the tiny model has no provenance
    p = ser("info", "--model", tiny_model_dir, "--format", "json")
    assert json.loads(p.stdout)["labels"][0] == "angry"
    p = ser("devices")
    assert p.returncode == 0, p.stdout
    assert any(line.startswith("*") for line in p.stdout.splitlines()), p.stdout
    devices = json.loads(ser("devices", "--format", "json").stdout)
    assert sum(d["is_default"] for d in devices) == 1


def _listen_while_speech_plays(
    virtual_mic: VirtualMic, model_dir: Path, *options: str
) -> tuple[subprocess.Popen[str], str, str, list[dict[str, Any]]]:
    """Run ``ser listen --format jsonl`` on the virtual microphone; 4 s of speech-like sound play once audio flows.

    Returns the finished process, its stdout and stderr, and the JSON lines.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_engine.cli", "listen", "--model", str(model_dir), "--format", "jsonl", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
    )
    output = ProcessOutput(proc)
    output.wait_for_line("stdout", lambda line: line.startswith("{"), what="the first prediction (audio flows)")
    virtual_mic.play(synth_speechlike(seconds=4.0, level=0.4)).wait(timeout=20)
    out, err = output.finish(timeout=60)
    return proc, out, err, [json.loads(line) for line in out.splitlines()]


@pytest.mark.mic
def test_listen_streams_jsonl(tiny_model_dir: Path, virtual_mic: VirtualMic, tmp_path: Path) -> None:
    rec = tmp_path / "rec.wav"
    proc, _out, err, lines = _listen_while_speech_plays(virtual_mic, tiny_model_dir, "--duration", "14",
                                                         "--record", str(rec))
    assert proc.returncode == 0, err
    # one prediction per 0.5 s hop of stream time, from the first audio through the 14 s
    assert [x["end_s"] for x in lines[:28]] == pytest.approx([0.5 * (i + 1) for i in range(28)], abs=0.01)
    assert set(lines[0]) >= {"start_s", "end_s", "speech", "label", "confidence", "probabilities"}
    assert any(x["speech"] and x["label"] for x in lines)
    assert any(not x["speech"] and x["label"] is None for x in lines)  # >= 6 s of silence after the speech
    assert sf.info(str(rec)).duration > 5
    assert Path(str(rec) + ".csv").is_file()


@pytest.mark.mic
@pytest.mark.usefixtures("virtual_mic")
def test_listen_interrupted_exits_130(tiny_model_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_engine.cli", "listen", "--model", str(tiny_model_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
    )
    output = ProcessOutput(proc)
    output.wait_for_line("stdout", lambda line: "silence" in line or "speech" in line,
                         what="the first prediction (it is listening)")
    proc.send_signal(signal.SIGINT)
    _, err = output.finish(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("virtual_mic")
def test_listen_bad_device(tiny_model_dir: Path) -> None:
    p = ser("listen", "--model", tiny_model_dir, "--device", "no such microphone 42", "--duration", "1")
    no_traceback(p)
    assert p.returncode == 1
    assert "no input device named" in p.stderr


@pytest.mark.corpus
def test_shipped_model_on_test_actors_matches_training_evaluation(corpus_dir: Path, shipped_model_dir: Path) -> None:
    """`ser analyze` gives RAVDESS test actors' true emotions as often as training measured.

    Training evaluates the same clips (speaker-disjoint test actors) with the same windows,
    gate and mean-over-speech-windows rule; a gap here means run time and training disagree.
    """
    split = json.loads((ROOT / "training" / "splits" / "speakers.json").read_text())
    actors = [a.split(":")[1] for a in split["corpora"]["ravdess"]["test"]]
    meta = json.loads((shipped_model_dir / "model.json").read_text())
    labels = meta["labels"]
    clips = sorted(f for a in actors for f in (corpus_dir / "ravdess" / f"Actor_{a}").glob("*.flac"))
    assert len(clips) == 60 * len(actors)
    p = ser("analyze", "--format", "json", *clips, timeout=900)
    assert p.returncode == 0, p.stderr
    results = json.loads(p.stdout)

    def truth(path: str) -> str:
        label = RAVDESS_EMOTIONS[Path(path).name.split("-")[2]]
        return "neutral" if label == "calm" and "calm" not in labels else label

    correct = [r["label"] == truth(r["path"]) for r in results]
    acc = float(np.mean(correct))
    chance = 1 / len(labels)
    assert acc >= 2 * chance, f"accuracy {acc:.2f} on {len(results)} test-actor clips (chance {chance:.2f})"
    strong = [c for r, c in zip(results, correct, strict=True) if Path(r["path"]).name.split("-")[3] == "02"]
    assert np.mean(strong) >= 2 * chance
    metrics = meta.get("metrics", {})
    test_metrics = metrics.get("test_speakers", metrics.get("test", {}))
    reported = test_metrics.get("ravdess", {}).get("accuracy")
    assert reported is not None, "model.json reports no RAVDESS test accuracy"
    assert abs(acc - reported) <= 0.05, f"ser analyze accuracy {acc:.3f} vs training's {reported:.3f}"


# ----------------------------------------------------------------------------- voice profiles and "uncertain"
CREMA_SPEAKER = "1002"  # a CREMA-D test speaker (training/splits/speakers.json)


def crema(corpus_dir: Path, emotion: str) -> list[Path]:
    files = sorted((corpus_dir / "crema-d").glob(f"{CREMA_SPEAKER}_*_{emotion}_*.ogg"))
    assert len(files) >= 5, f"too few CREMA-D {CREMA_SPEAKER} {emotion} clips in {corpus_dir}"
    return files


@pytest.fixture(scope="module")
def calibration_run(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Write a voice profile with `ser calibrate` from 11 real neutral clips (about 12 s of voiced speech)."""
    out = tmp_path_factory.mktemp("profile") / "speaker-1002.json"
    p = ser("calibrate", *crema(corpus_dir, "NEU")[:11], "--output", out, "--name", "Speaker 1002")
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert "speech used:" in p.stdout
    assert "held-out check:" in p.stdout
    return out, p


@pytest.fixture(scope="module")
def calibrated(calibration_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    """Return the voice profile `ser calibrate` wrote from 11 real neutral clips of speaker 1002."""
    return calibration_run[0]


@pytest.mark.corpus
def test_calibrate_writes_a_loadable_profile(calibrated: Path, shipped_model_dir: Path) -> None:
    from ser_engine.inference.model import EmotionModel, model_fingerprint
    from ser_engine.inference.profile import VoiceProfile

    prof = VoiceProfile.load(calibrated)
    model = EmotionModel.load(shipped_model_dir)
    assert prof.name == "Speaker 1002"
    assert prof.speech_s >= 8
    assert len(prof.sources) == 11
    assert prof.model_sha256 == model_fingerprint(model)
    assert model.with_profile(prof).profile == prof


@pytest.mark.corpus
def test_calibrate_refuses_silence_short_speech_and_missing_files(corpus_dir: Path, tmp_path: Path) -> None:
    silence = tmp_path / "silence.wav"
    sf.write(str(silence), np.zeros(12 * SR, np.float32), SR)
    out = tmp_path / "p.json"
    p = ser("calibrate", silence, "--output", out)
    no_traceback(p)
    assert p.returncode == 1
    assert p.stderr.strip() == f"ser: {silence}: no speech found; need at least 8 s of normal speech"
    one = crema(corpus_dir, "NEU")[0]
    p = ser("calibrate", one, "--output", out)
    assert p.returncode == 1
    voiced = json.loads(ser("analyze", one, "--format", "json").stdout)[0]["speech_s"]  # the same measure
    assert 0 < voiced < 8
    assert f"ser: {one}: only {voiced:.1f} s of speech found" in p.stderr
    assert "need at least 8 s" in p.stderr
    p = ser("calibrate", one, tmp_path / "gone.wav", "--output", out)
    assert p.returncode == 1
    assert p.stderr.strip() == f"ser: {tmp_path / 'gone.wav'}: file not found"
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 40)
    p = ser("calibrate", one, text, "--output", out)
    assert p.returncode == 1
    assert p.stderr.startswith(f"ser: {text}: ")
    assert "text" in p.stderr
    assert not out.exists()  # nothing written on failure
    p = ser("calibrate", one)  # --output is required
    assert p.returncode == 2
    assert "--output" in p.stderr
    p = ser("calibrate", one, "--output", tmp_path / "no" / "dir" / "p.json")
    assert p.returncode == 1
    assert "does not exist" in p.stderr
    no_traceback(p)


HELD_OUT_LINE = re.compile(
    r"^  held-out check: your neutral speech read as neutral in (\d+) % of windows before calibration, "
    r"(\d+) % after \(mean neutral probability (\d\.\d\d) -> (\d\.\d\d); (\d+) halves, (\d+) windows scored\)$",
    re.MULTILINE)
NOT_IMPROVED = "calibration did not make this neutral speech read more neutral"


def joined_audio(files: list[Path]) -> np.ndarray:
    """Decode the files at the model's rate and join them in order, nothing added between them."""
    from ser_engine.dsp.audio import load_audio

    return np.concatenate([load_audio(f, sample_rate=SR).samples for f in files])


def assert_reports_check(stdout: str, files: list[Path], model: EmotionModel) -> HeldOutCheck:
    """Assert that `ser calibrate` printed the held-out check of ``files``, computed here on its own; return it."""
    from ser_engine.inference.profile_check import check_held_out

    check = check_held_out(audio=joined_audio(files), model=model)
    found = HELD_OUT_LINE.findall(stdout)
    assert len(found) == 1, stdout
    before, after, mean_before, mean_after, halves, n = found[0]
    assert (before, after) == (f"{check.before_share * 100:.0f}", f"{check.after_share * 100:.0f}"), stdout
    assert (mean_before, mean_after) == (f"{check.before_mean:.2f}", f"{check.after_mean:.2f}"), stdout
    assert (int(halves), int(n)) == (len(check.folds), check.n_held_out), stdout
    # said not to improve exactly when no more held-out windows read as neutral after calibration than before
    after_n, before_n = (sum(f.after_neutral for f in check.folds), sum(f.before_neutral for f in check.folds))
    assert (NOT_IMPROVED in stdout) == (after_n <= before_n), stdout
    return check


@pytest.mark.corpus
def test_calibrate_reports_the_held_out_check_not_the_in_sample_figures(
        calibration_run: tuple[Path, subprocess.CompletedProcess[str]], corpus_dir: Path,
        shipped_model: EmotionModel) -> None:
    out, p = calibration_run
    check = assert_reports_check(p.stdout, crema(corpus_dir, "NEU")[:11], shipped_model)
    assert check.improved  # speaker 1002 reads as neutral more often with the profile
    lines = p.stdout.splitlines()
    assert lines[0] == f"voice profile 'Speaker 1002' written to {out}"
    assert lines[1].startswith("  speech used: ")
    assert HELD_OUT_LINE.fullmatch(lines[2]), lines
    assert lines[3].startswith("  use it with: ")
    assert len(lines) == 4, lines
    # the profile's own before/after (over the very windows it was made from) is not printed
    assert "the model said" not in p.stdout
    assert "on the calibration speech itself" not in p.stdout
    assert p.stderr == ""


@pytest.mark.corpus
def test_calibrate_says_plainly_when_calibration_did_not_help(corpus_dir: Path, shipped_model_dir: Path,
                                                             tmp_path: Path) -> None:
    # The shipped model's profile makes every real neutral recording tried read more neutral, so the
    # check's other outcome is made with the shipped graph and a plain logit shift whose reference
    # lies far below where any voice's neutral logit does: the profile then takes neutral away.
    model_dir = tmp_path / "model"
    shutil.copytree(shipped_model_dir, model_dir)
    meta = json.loads((model_dir / "model.json").read_text())
    meta["voice_calibration"] = {"reference_logits": [-10.0 if lab == "neutral" else 0.0 for lab in meta["labels"]],
                                 "strength": 1.0, "fitted_on": "a reference far below any voice's neutral speech"}
    (model_dir / "model.json").write_text(json.dumps(meta))
    model = EmotionModel.load(model_dir)
    clips = sorted((corpus_dir / "crema-d").glob("1008_*_NEU_*.ogg"))
    assert len(clips) >= 10
    out = tmp_path / "p.json"
    p = ser("calibrate", *clips, "--model", model_dir, "--output", out, "-v")
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    check = assert_reports_check(p.stdout, clips, model)
    assert not check.improved
    assert check.before_share > 0.5  # the voice did read as neutral before: the profile took it away
    line = next(x for x in p.stdout.splitlines() if NOT_IMPROVED in x)
    assert "the profile was still written" in line
    assert "recording more, or cleaner, neutral speech may help" in line
    # --verbose adds the profile's own figures, said to be measured on the calibration speech itself
    prof = VoiceProfile.load(out)
    inside = [x for x in p.stdout.splitlines() if "before" in x and not HELD_OUT_LINE.fullmatch(x) and
              NOT_IMPROVED not in x]
    assert len(inside) == 1, p.stdout
    top = max(prof.before, key=lambda k: prof.before[k])
    assert inside[0].startswith("  on the calibration speech itself the model said ")
    assert f" {top} {prof.before[top]:.2f} before" in inside[0]


@pytest.mark.corpus
def test_calibrate_writes_the_profile_when_the_check_cannot_be_made(corpus_dir: Path, shipped_model: EmotionModel,
                                                                   tmp_path: Path) -> None:
    from ser_engine.dsp.audio import load_audio
    from ser_engine.errors import ProfileError
    from ser_engine.inference.profile_check import check_held_out

    # Half-second bursts of real speech 4 s apart, then six whole clips: enough speech for a profile,
    # but the first half of the speech windows (mostly the bursts') holds too little voiced speech.
    clips = crema(corpus_dir, "NEU")
    bursts = []
    for f in clips[:5]:
        y = load_audio(f, sample_rate=SR).samples
        i = int(np.argmax(np.convolve(y ** 2, np.ones(SR // 2), "valid")))
        bursts += [y[i:i + SR // 2], np.zeros(4 * SR, np.float32)]
    sparse = tmp_path / "bursts.wav"
    sf.write(str(sparse), np.concatenate(bursts), SR, subtype="FLOAT")
    inputs = [sparse, *clips[5:]]
    with pytest.raises(ProfileError, match="too little speech to hold part of it out") as info:
        check_held_out(audio=joined_audio(inputs), model=shipped_model)
    out = tmp_path / "p.json"
    p = ser("calibrate", *inputs, "--output", out)
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert VoiceProfile.load(out).sources == tuple(f.name for f in inputs)
    assert f"  note: the held-out check could not be made: {info.value}; the profile was still written" \
        in p.stdout.splitlines(), p.stdout
    assert "held-out check:" not in p.stdout
    assert p.stderr == ""


def _made_up_check(before: int, after: int, *, per_fold: int = 10) -> HeldOutCheck:
    """Make up a check of two folds of ``per_fold`` windows, ``before``/``after`` of each read as neutral."""
    from ser_engine.inference.profile_check import FoldCheck

    prof = VoiceProfile(name="x", model_name="m", model_sha256="0" * 64, labels=("neutral", "sad"),
                        logit_shift=(0.0, 0.0), speech_s=4.0, n_windows=per_fold, created="2000-01-01T00:00:00Z",
                        sources=("x",), before={"neutral": 0.5, "sad": 0.5}, after={"neutral": 0.5, "sad": 0.5})
    fold = FoldCheck(calibration_span=(0.0, 1.0), held_out_span=(1.0, 2.0), profile=prof, n_held_out=per_fold,
                     before_neutral=before, after_neutral=after, before_mean=0.3, after_mean=0.35)
    n = 2 * per_fold
    return HeldOutCheck(label="neutral", before_share=2 * before / n, after_share=2 * after / n, before_mean=0.3,
                        after_mean=0.35, n_windows=n + 3, n_held_out=n, n_straddling=3, split_s=1.0,
                        folds=(fold, fold))


@pytest.mark.parametrize(("before", "after", "why"), [
    (3, 6, None),
    (6, 6, "(as many held-out windows read as neutral with it as without)"),
    (6, 3, "(fewer held-out windows read as neutral with it)"),
    (0, 0, "(as many held-out windows read as neutral with it as without)"),
    (10, 10, "(it already read as neutral in every held-out window without calibration)"),
])
def test_calibrate_held_out_wording(before: int, after: int, why: str | None) -> None:
    from ser_engine.cli.model import held_out_lines

    lines = held_out_lines(_made_up_check(before, after))
    assert lines[0] == (f"held-out check: your neutral speech read as neutral in {before * 10} % of windows before "
                        f"calibration, {after * 10} % after (mean neutral probability 0.30 -> 0.35; 2 halves, "
                        "20 windows scored)")
    if why is None:  # more windows read as neutral: the figures say it all
        assert lines == lines[:1]
        return
    assert len(lines) == 2
    assert lines[1].startswith(f"{NOT_IMPROVED} {why}; the profile was still written")
    # advice to record again only when there was something left to gain
    assert ("recording more, or cleaner, neutral speech may help" in lines[1]) == (before < 10)


@pytest.mark.corpus
def test_analyze_with_profile_changes_the_probabilities(calibrated: Path, corpus_dir: Path, tmp_path: Path) -> None:
    clips = [crema(corpus_dir, e)[0] for e in ("ANG", "SAD", "HAP")]
    plain = json.loads(ser("analyze", "--format", "json", "--segments", *clips).stdout)
    p = ser("analyze", "--format", "json", "--segments", "--profile", calibrated, *clips)
    assert p.returncode == 0, p.stderr
    with_profile = json.loads(p.stdout)
    for a, b in zip(plain, with_profile, strict=True):
        assert a["path"] == b["path"]
        assert a["speech_s"] == b["speech_s"]
        diff = max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"])
        assert diff > 0.02, (a["probabilities"], b["probabilities"])
    # a profile given by its name in the user's profile folder ($XDG_DATA_HOME/ser/profiles)
    store = tmp_path / "data" / "ser" / "profiles"
    store.mkdir(parents=True)
    shutil.copy(calibrated, store / "anything.json")
    p = ser("analyze", "--format", "json", "--segments", "--profile", "Speaker 1002", *clips,
            extra_env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == with_profile
    p = ser("analyze", "--profile", "Nobody", *clips, extra_env={"XDG_DATA_HOME": str(tmp_path / "data")})
    no_traceback(p)
    assert p.returncode == 1
    assert "no voice profile named 'Nobody'" in p.stderr
    assert p.stdout == ""


@pytest.mark.corpus
def test_profile_of_another_model_or_broken_is_refused(calibrated: Path, corpus_dir: Path, tiny_model_dir: Path,
                                                       shipped_model_dir: Path, tmp_path: Path) -> None:
    clip = crema(corpus_dir, "ANG")[0]
    shipped = json.loads((shipped_model_dir / "model.json").read_text())["name"]
    p = ser("analyze", "--model", tiny_model_dir, "--profile", calibrated, clip)
    no_traceback(p)
    assert p.returncode == 1
    assert p.stdout == ""
    line = p.stderr.strip()
    assert line.startswith(f"ser: profile 'Speaker 1002' was made for model {shipped} (sha ")
    assert line.endswith("; record a new profile")
    assert "\n" not in line
    broken = tmp_path / "broken.json"
    broken.write_text("{ nope")
    p = ser("analyze", "--profile", broken, clip)
    assert p.returncode == 1
    assert f"ser: {broken}: not a voice profile (not valid JSON" in p.stderr
    p = ser("analyze", "--profile", tmp_path / "missing.json", clip)
    assert p.returncode == 1
    assert f"ser: {tmp_path / 'missing.json'}: voice profile not found" in p.stderr


@pytest.mark.corpus
def test_uncertain_in_json_csv_and_table(corpus_dir: Path, shipped_model_dir: Path, tiny_model_dir: Path,
                                         tmp_path: Path, files: dict[str, Path]) -> None:
    threshold = json.loads((shipped_model_dir / "model.json").read_text())["uncertainty_threshold"]
    clips = [crema(corpus_dir, e)[i] for e in ("ANG", "SAD", "HAP", "FEA", "DIS", "NEU") for i in range(5)]
    data = json.loads(ser("analyze", "--format", "json", "--segments", *clips).stdout)
    for r in data:
        assert r["uncertain"] == (r["confidence"] < threshold)
        for s in r["segments"]:
            assert s["uncertain"] == (max(s["probabilities"].values()) < threshold)
    assert {r["uncertain"] for r in data} == {True, False}, "these clips should give both kinds"
    rows = list(csv.DictReader(io.StringIO(ser("analyze", "--format", "csv", *clips).stdout)))
    header = list(rows[0])
    assert header.index("uncertain") == header.index("confidence") + 1
    assert [r["uncertain"] for r in rows] == [str(int(r["uncertain"])) for r in data]
    table = ser("analyze", *clips).stdout.splitlines()[1:]
    for line, r in zip(table, data, strict=True):
        assert line.split()[3] == ("uncertain" if r["uncertain"] else r["label"])
        assert "=" in line  # the probabilities are still printed
    # a model without a threshold never says uncertain; one with 0.99 always does (on speech)
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    p = ser("analyze", "--model", d, "--format", "csv", files["good"], files["silence"])
    assert [r["uncertain"] for r in csv.DictReader(io.StringIO(p.stdout))] == ["0", "0"]
    meta = json.loads((d / "model.json").read_text())
    meta["uncertainty_threshold"] = 0.99
    (d / "model.json").write_text(json.dumps(meta))
    p = ser("analyze", "--model", d, "--format", "csv", files["good"], files["silence"])
    assert [r["uncertain"] for r in csv.DictReader(io.StringIO(p.stdout))] == ["1", "0"]
    p = ser("analyze", "--model", d, "--format", "csv", "--segments", files["good"])
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert list(rows[0])[7] == "uncertain"
    assert {r["uncertain"] for r in rows if r["speech"] == "1"} == {"1"}
    assert "uncertain" in ser("analyze", "--model", d, files["good"]).stdout


def test_info_says_whether_the_model_can_be_calibrated(tiny_model_dir: Path, shipped_model_dir: Path,
                                                        tmp_path: Path) -> None:
    meta = json.loads((shipped_model_dir / "model.json").read_text())
    threshold, strength = meta["uncertainty_threshold"], meta["voice_calibration"]["strength"]
    p = ser("info")
    assert p.returncode == 0
    info = {line.split("  ")[0].strip(): line for line in p.stdout.splitlines()}
    # the shipped model blends in its speaker-centred head
    assert meta["voice_calibration"]["head_output"] == "voice_logits"
    assert (f"supported: with a profile, a share of {strength:g} of each answer comes from a second read-out "
            "('voice_logits')") in info["voice calibration"]
    assert f"{threshold:g} (a top probability below it" in info["uncertainty threshold"]
    data = json.loads(ser("info", "--format", "json").stdout)
    assert data["supports_voice_calibration"] is True
    # a model without one says so; one whose profile is a plain logit shift says what it is measured against
    def calibration_line(model_dir: Path) -> str:
        p = ser("info", "--model", model_dir)
        assert p.returncode == 0
        return next(line for line in p.stdout.splitlines() if line.startswith("voice calibration"))

    assert "not supported (model.json has no voice_calibration)" in calibration_line(tiny_model_dir)
    shift_dir = tmp_path / "shift"
    shutil.copytree(tiny_model_dir, shift_dir)
    tiny = json.loads((shift_dir / "model.json").read_text())
    tiny["voice_calibration"] = {"reference_logits": [0.0] * len(tiny["labels"]), "strength": 0.75,
                                 "fitted_on": "neutral speech of 3 test voices"}
    (shift_dir / "model.json").write_text(json.dumps(tiny))
    assert "supported, strength 0.75 (reference: neutral speech of 3 test voices)" in calibration_line(shift_dir)
    assert data["uncertainty_threshold"] == threshold
    assert len(data["voice_calibration"]["reference_logits"]) == len(data["labels"])
    p = ser("info", "--model", tiny_model_dir)
    assert "not supported" in p.stdout
    assert "never marked uncertain" in p.stdout
    data = json.loads(ser("info", "--model", tiny_model_dir, "--format", "json").stdout)
    assert data["supports_voice_calibration"] is False
    assert data["uncertainty_threshold"] == 0.0


@pytest.mark.mic
@pytest.mark.corpus
def test_listen_with_profile(calibrated: Path, corpus_dir: Path, virtual_mic: VirtualMic, tmp_path: Path,
                             tiny_model_dir: Path, shipped_model_dir: Path) -> None:
    threshold = json.loads((shipped_model_dir / "model.json").read_text())["uncertainty_threshold"]
    rec = tmp_path / "rec.wav"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ser_engine.cli", "listen", "--duration", "10", "--format", "jsonl",
         "--profile", str(calibrated), "--record", str(rec)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT,
    )
    output = ProcessOutput(proc)
    output.wait_for_line("stdout", lambda line: line.startswith("{"), what="the first prediction (audio flows)")
    virtual_mic.play(crema(corpus_dir, "ANG")[0]).wait(timeout=20)
    out, err = output.finish(timeout=60)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    speech = [x for x in lines if x["speech"]]
    assert speech
    assert all(x["uncertain"] == (x["confidence"] < threshold) for x in speech)
    assert all(x["uncertain"] is False for x in lines if not x["speech"])
    with open(str(rec) + ".csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header.index("uncertain") == header.index("confidence") + 1
    assert {r["uncertain"] for r in rows if r["speech"] == "1"} <= {"0", "1"}
    assert any(r["speech"] == "1" for r in rows)
    # another model's profile: exit 1 with the message, before any audio is opened
    p = ser("listen", "--model", tiny_model_dir, "--profile", calibrated, "--duration", "1")
    no_traceback(p)
    assert p.returncode == 1
    assert f"was made for model {json.loads((shipped_model_dir / 'model.json').read_text())['name']}" in p.stderr
    assert "record a new profile" in p.stderr
    assert "listening on" not in p.stderr


def test_info_is_a_readable_summary_and_json_on_request(shipped_model_dir: Path) -> None:
    import onnxruntime

    meta = json.loads((shipped_model_dir / "model.json").read_text())
    p = ser("info", "--model", shipped_model_dir)
    assert p.returncode == 0, p.stderr
    text = p.stdout
    # no raw provenance: no JSON, no data folder, no commit, no training hyper-parameters
    assert "{" not in text
    assert "data_root" not in text
    assert "git_commit" not in text
    assert "+dirty" not in text
    assert "learning_rate" not in text
    info = {line[:21].strip(): line[21:].strip() for line in text.splitlines()}
    assert info["emotions"].startswith(f"{len(meta['labels'])}: {', '.join(meta['labels'])}")
    assert info["trained on"] == ", ".join(meta["provenance"]["corpora"])
    assert info["held out"] == meta["provenance"]["held_out"]
    m = meta["metrics"]
    assert info["test speakers"].startswith(f"UAR {100 * m['test_speakers']['all']['uar']:.1f} % pooled")
    # one figure everywhere: the mean over unseen corpora that README and docs/results.md quote, each corpus named
    unseen = m["unseen_corpora"]
    corpora = meta["provenance"]["corpora"]
    assert info["unseen corpora"].startswith(
        f"mean UAR {100 * unseen['mean_corpus_uar']:.1f} % over {len(corpora)} corpora")
    for corpus in corpora:
        assert f"{corpus} {100 * unseen[corpus]['uar']:.1f} %" in info["unseen corpora"]
    assert m["unseen_corpora_method"] in info["unseen corpora"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"{100 * unseen['mean_corpus_uar']:.1f} %" in readme
    assert f"a share of {meta['voice_calibration']['strength']:g} of each answer" in info["voice calibration"]
    assert info["uncertainty threshold"].startswith(f"{meta['uncertainty_threshold']:g} ")
    assert info["ONNX Runtime"].startswith(onnxruntime.__version__)
    kb = (shipped_model_dir / "model.onnx").stat().st_size / 1024
    assert f"model.onnx {kb:.0f} KB" in info["model"]
    # the raw form: --json, the same as --format json
    raw = ser("info", "--model", shipped_model_dir, "--json")
    assert raw.returncode == 0
    assert raw.stdout == ser("info", "--model", shipped_model_dir, "--format", "json").stdout
    data = json.loads(raw.stdout)
    assert data["provenance"] == meta["provenance"]
    assert data["metrics"] == meta["metrics"]


@pytest.mark.mic
@pytest.mark.usefixtures("virtual_mic")
def test_listen_duration_counts_from_the_first_audio(tiny_model_dir: Path) -> None:
    # 3 s at a 0.5 s hop: predictions at 0.5, 1.0, ... 3.0 s of audio, whatever the device's start-up time
    # (the run ends by itself: the subprocess timeout is only a guard)
    p = ser("listen", "--model", tiny_model_dir, "--duration", "3", "--format", "jsonl", timeout=60)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    ends = [x["end_s"] for x in lines]
    assert ends == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0], abs=0.05), p.stdout


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--hop", "0.0001", "argument --hop: must be between 0.05 and 5 seconds, got '0.0001'"),
    ("--hop", "0.01", "argument --hop: must be between 0.05 and 5 seconds, got '0.01'"),
    ("--hop", "5.5", "argument --hop: must be between 0.05 and 5 seconds, got '5.5'"),
    ("--window", "0.01", "argument --window: must be between 0.5 and 10 seconds, got '0.01'"),
    ("--window", "12", "argument --window: must be between 0.5 and 10 seconds, got '12'"),
    ("--window", "nan", "argument --window: must be a finite number, got 'nan'"),
    ("--sensitivity", "1.5", "argument --sensitivity: must be between 0 and 1, got '1.5'"),
])
def test_option_limits_are_the_same_for_every_command(tiny_model_dir: Path, files: dict[str, Path], option: str,
                                                        value: str, message: str) -> None:
    commands = {"analyze": ["analyze", files["good"]], "listen": ["listen", "--duration", "1"],
                "calibrate": ["calibrate", files["good"], "-o", files["good"].with_suffix(".json")]}
    takes = {"--hop": ("analyze", "listen"), "--window": ("analyze", "listen"),
             "--sensitivity": ("analyze", "listen", "calibrate")}
    for name in takes[option]:
        p = ser(*commands[name], "--model", tiny_model_dir, option, value)
        no_traceback(p)
        assert p.returncode == 2, (name, p.stderr)
        assert p.stderr.splitlines()[-1] == f"ser: error: {message}", (name, p.stderr)


def test_hop_longer_than_the_window_is_refused_alike(tiny_model_dir: Path, files: dict[str, Path]) -> None:
    for cmd in (["analyze", files["good"]], ["listen", "--duration", "1"]):
        p = ser(*cmd, "--model", tiny_model_dir, "--window", "1", "--hop", "2")
        no_traceback(p)
        assert p.returncode == 2, p.stderr
        assert p.stderr.strip() == "ser: error: argument --hop: must not be longer than the window (1 s), got '2'"
    # the smallest hop is accepted
    p = ser("analyze", files["good"], "--model", tiny_model_dir, "--hop", "0.05", "--format", "json", "--segments")
    assert p.returncode == 0, p.stderr
    starts = [seg["start_s"] for seg in json.loads(p.stdout)[0]["segments"]]
    assert len(starts) == 21  # 3 s windows over 4 s
    assert starts[1] - starts[0] == pytest.approx(0.05)


@pytest.mark.mic
@pytest.mark.usefixtures("virtual_mic")
def test_listen_empty_device_means_the_default(tiny_model_dir: Path) -> None:
    for device in ("", "  "):
        p = ser("listen", "--model", tiny_model_dir, "--device", device, "--duration", "1", "--format", "jsonl",
                timeout=60)
        no_traceback(p)
        assert p.returncode == 0, p.stderr
        assert "ambiguous" not in p.stderr, p.stderr
        assert len(p.stdout.splitlines()) >= 1


def test_info_prints_no_absolute_path_of_this_machine(tiny_model_dir: Path, shipped_model_dir: Path,
                                                      tmp_path: Path) -> None:
    import re

    absolute = re.compile(r"(^|[\s\"'(])/(?:[\w.-]+/)*[\w.-]+")
    for args, where in [((), "the bundled model"), (("--model", tiny_model_dir), "the folder given with --model"),
                        (("--model", "models"), "models")]:  # cwd is the repository: relative stays relative
        table = ser("info", *args)
        raw = ser("info", *args, "--json")
        assert table.returncode == 0, table.stderr + raw.stderr
        assert raw.returncode == 0, table.stderr + raw.stderr
        for out in (table.stdout, raw.stdout):
            assert not absolute.search(out), absolute.search(out)
            assert str(ROOT) not in out
            assert str(tmp_path.parent) not in out
        assert table.stdout.splitlines()[0].endswith(f" in {where}")
        assert json.loads(raw.stdout)["location"] == where
    assert json.loads(ser("info", "--json").stdout)["provenance"]["data_root"] == "../shared/data/ser"
    inside = ser("info", "--model", shipped_model_dir)  # absolute, under the current folder
    assert inside.stdout.splitlines()[0].endswith(" in models")  # shown from the current folder
    shutil.copytree(tiny_model_dir, tmp_path / "my model")
    home = ser("info", "--model", tmp_path / "my model", extra_env={"HOME": str(tmp_path)})
    assert home.stdout.splitlines()[0].endswith(" in ~/my model")


# ----------------------------------------------------------------------------- errors and the log
def _bug(*_: object) -> np.ndarray:
    raise TypeError("unsupported operand type(s) for -: 'NoneType' and 'float'")


def test_a_bug_inside_analysis_is_one_line_naming_the_log_whose_file_holds_the_traceback(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ser_engine.cli.common import EXIT_INTERNAL
    from ser_engine.cli.main import main
    from ser_engine.dsp.features import Featurizer

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = tmp_path / "state" / "ser" / "ser.log"
    clip = tmp_path / "speech.wav"
    sf.write(str(clip), synth_speechlike(seconds=3.5, seed=3), SR)
    monkeypatch.setattr(Featurizer, "normalize", _bug)
    code = main(["analyze", "--model", str(tiny_model_dir), "--format", "json", str(clip)])
    out, err = capsys.readouterr()
    assert code == EXIT_INTERNAL
    assert code not in (0, 1, 2, 130)  # distinct from every other outcome
    assert err.splitlines() == [
        f"ser: internal error: TypeError: unsupported operand type(s) for -: 'NoneType' and 'float' "
        f"(details in {log})"], err
    assert "Traceback" not in out
    text = log.read_text(encoding="utf-8")
    assert "internal error in `ser analyze`" in text
    assert "Traceback (most recent call last)" in text
    assert "in _bug" in text  # the traceback reaches the bug
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_bug_without_a_log_file_shows_the_traceback_on_stderr(
        tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ser_engine.cli.common import EXIT_INTERNAL
    from ser_engine.cli.main import main
    from ser_engine.dsp.features import Featurizer

    (tmp_path / "state").write_text("a file where the state folder should be\n")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    clip = tmp_path / "speech.wav"
    sf.write(str(clip), synth_speechlike(seconds=3.5, seed=3), SR)
    monkeypatch.setattr(Featurizer, "normalize", _bug)
    assert main(["analyze", "--model", str(tiny_model_dir), str(clip)]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith(f"ser: cannot write the log file {tmp_path / 'state' / 'ser' / 'ser.log'}: "), err
    assert lines[1] == ("ser: internal error: TypeError: unsupported operand type(s) for -: 'NoneType' and 'float' "
                        "(no log file; traceback follows)"), err
    assert "Traceback (most recent call last)" in err
    assert "in _bug" in err


def test_a_read_only_state_folder_is_said_once_and_the_command_works(tmp_path: Path, tiny_model_dir: Path) -> None:
    from privileged import as_root, small_tmpfs

    with small_tmpfs(tmp_path / "ro", size="64k") as ro:
        remount = subprocess.run(as_root(["mount", "-o", "remount,ro", str(ro)], why="a read-only folder"),
                                 capture_output=True, text=True, timeout=30)
        assert remount.returncode == 0, remount.stderr
        p = ser("info", "--model", tiny_model_dir, extra_env={"XDG_STATE_HOME": str(ro)})
        assert not any(ro.iterdir())
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("model ")
    assert p.stderr.splitlines() == [
        f"ser: cannot write the log file {ro / 'ser' / 'ser.log'}: Read-only file system; going on without it"]


@pytest.mark.parametrize("flag", [[], ["-v"], ["--verbose"], ["after"]])
def test_verbose_shows_debug_messages_and_the_log_file_keeps_them(tmp_path: Path, tiny_model_dir: Path,
                                                                  flag: list[str]) -> None:
    args: list[str | Path] = ["info", "--model", tiny_model_dir]
    if flag == ["after"]:
        args.append("-v")  # after the sub-command works too
    else:
        args = [*flag, *args]
    p = ser(*args, extra_env={"XDG_STATE_HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    log = (tmp_path / "ser" / "ser.log").read_text(encoding="utf-8")
    if flag:
        assert "ser: DEBUG: " in p.stderr, p.stderr
        assert " DEBUG ser.model: " in log
    else:
        assert p.stderr == ""
        assert "DEBUG" not in log


def test_help_documents_the_exit_statuses_and_the_log() -> None:
    p = ser("--help")
    assert p.returncode == 0
    assert "70  internal error" in p.stdout
    assert "log file: $XDG_STATE_HOME/ser/ser.log" in p.stdout


@pytest.mark.mic
def test_a_bug_in_the_live_worker_ends_listen_as_an_internal_error(
        tmp_path: Path, tiny_model_dir: Path, virtual_mic: VirtualMic, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ser_engine.cli.common import EXIT_INTERNAL
    from ser_engine.cli.main import main
    from ser_engine.live.stream import Streamer

    del virtual_mic  # the default input the session opens
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(Streamer, "push", _bug)
    code = main(["listen", "--model", str(tiny_model_dir), "--format", "jsonl", "--duration", "5",
                 "--record", str(tmp_path / "rec.wav")])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL
    assert err.splitlines() == [
        f"ser: internal error: TypeError: unsupported operand type(s) for -: 'NoneType' and 'float' "
        f"(details in {tmp_path / 'ser' / 'ser.log'})"], err
    log = (tmp_path / "ser" / "ser.log").read_text(encoding="utf-8")
    assert "live analysis stopped by an internal error" in log
    assert "in _bug" in log
    assert (tmp_path / "rec.wav").is_file()  # the recording was closed, not lost


def test_analyze_and_info_show_arousal_and_valence_of_a_model_with_affect(affect_model_dir: Path,
                                                                          files: dict[str, Path]) -> None:
    args = ("analyze", "--model", affect_model_dir, "--workers", "1", files["good"], files["silence"])
    data = json.loads(ser(*args, "--format", "json").stdout)
    good = data[0]
    assert 0 <= good["arousal"] <= 1
    assert 0 <= good["valence"] <= 1
    assert data[1]["arousal"] is None
    assert data[1]["valence"] is None
    table = ser(*args, "--segments")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["file", "duration", "speech", "emotion", "conf", "arousal", "valence", "top"]
    row = next(line for line in lines if "good.wav" in line).split()
    assert row[5:7] == [f"{good['arousal']:.2f}", f"{good['valence']:.2f}"]  # after the confidence
    seg = next(line for line in lines if line.startswith("    ") and " speech " in line).split()
    assert len(seg) == 6
    assert all(0 <= float(v) <= 1 for v in seg[-3:])
    rows = list(csv.DictReader(io.StringIO(ser(*args, "--format", "csv").stdout)))
    assert rows[0]["arousal"] == f"{good['arousal']:.4f}"
    assert rows[1]["arousal"] == ""
    info = ser("info", "--model", affect_model_dir)
    assert info.returncode == 0
    text = {line.split()[0]: line for line in info.stdout.splitlines()}
    assert "arousal, valence" in text["affect"]
    assert "activated" in text["arousal"]
    assert "calm" in text["arousal"]
    assert "positive" in text["valence"]
    assert "negative" in text["valence"]
    meta = json.loads(ser("info", "--model", affect_model_dir, "--format", "json").stdout)
    assert meta["affect"]["names"] == ["arousal", "valence"]
    assert set(meta["affect_meaning"]) == {"arousal", "valence"}


def test_a_model_without_affect_has_no_affect_in_the_table_or_info(tiny_model_dir: Path,
                                                                   files: dict[str, Path]) -> None:
    lines = ser("analyze", "--model", tiny_model_dir, files["good"]).stdout.splitlines()
    assert lines[0].split() == ["file", "duration", "speech", "emotion", "conf", "top"]
    info = ser("info", "--model", tiny_model_dir)
    assert "affect" not in info.stdout
    assert "arousal" not in info.stdout
    assert "affect_meaning" not in json.loads(ser("info", "--model", tiny_model_dir, "--format", "json").stdout)


def test_listen_lines_carry_arousal_and_valence_only_for_a_model_with_affect(
        affect_model: EmotionModel, tiny_model: EmotionModel) -> None:
    from ser_engine.cli.listen import listen_line
    from ser_engine.live.inputs import ArrayInput
    from ser_engine.live.session import LiveSession
    from ser_engine.live.stream import Prediction

    y = np.concatenate([synth_speechlike(seconds=4.0, seed=7), np.zeros(3 * SR, np.float32)])
    for model in (affect_model, tiny_model):
        preds: list[Prediction] = []
        session = LiveSession(model, on_prediction=preds.append, input_factory=lambda: ArrayInput(y, SR, speed=4.0))
        session.start()
        assert session.finished.wait(60)
        session.stop()
        names = model.affect_names
        p = next(p for p in reversed(preds) if p.speech)
        quiet = preds[-1]
        assert not quiet.speech
        line = listen_line(p, fmt="table", affect=names)
        probs = " ".join(f"{k}={v:.2f}" for k, v in p.probabilities.items())
        lab = f"uncertain ({p.label}?)" if p.uncertain else p.label
        if names:
            scores = f"arousal={p.affect['arousal']:.2f} valence={p.affect['valence']:.2f}"
            assert line == f"{p.end_s:9.2f}s  speech   {lab:<10} {p.confidence:.2f}  {scores}  {probs}"
            assert json.loads(listen_line(quiet, fmt="jsonl", affect=names))["arousal"] is None
            assert json.loads(listen_line(p, fmt="jsonl", affect=names))["valence"] == round(p.affect["valence"], 6)
        else:  # the line ser listen always printed
            assert line == f"{p.end_s:9.2f}s  speech   {lab:<10} {p.confidence:.2f}  {probs}"
            assert json.loads(listen_line(p, fmt="jsonl", affect=names)) == json.loads(json.dumps(p.to_dict()))
        assert "arousal" not in listen_line(quiet, fmt="table", affect=names)
        # an uncertain window names the model's guess, as ser analyze's table does
        guess = dataclasses.replace(p, uncertain=True)
        assert f"speech   uncertain ({p.label}?) {p.confidence:.2f}" in listen_line(guess, fmt="table", affect=names)


# ----------------------------------------------------------------------------- --min-confidence


def model_copy(src: Path, dst: Path, **changes: object) -> Path:
    """Copy a model folder and change keys of its model.json."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    meta.update(changes)
    (dst / "model.json").write_text(json.dumps(meta))
    return dst


@pytest.mark.corpus
def test_min_confidence_decides_what_is_uncertain_on_real_clips(corpus_dir: Path, shipped_model_dir: Path) -> None:
    threshold = json.loads((shipped_model_dir / "model.json").read_text())["uncertainty_threshold"]
    assert threshold > 0  # else the default run below proves nothing
    clips = [crema(corpus_dir, e)[i] for e in ("ANG", "SAD", "NEU") for i in range(2)]
    runs = {}
    for value in ("0", "0.99"):
        p = ser("analyze", "--format", "json", "--segments", "--min-confidence", value, *clips)
        assert p.returncode == 0, p.stderr
        runs[value] = json.loads(p.stdout)
    speech = [s for r in runs["0"] for s in r["segments"] if s["speech"]]
    assert speech
    assert all(r["label"] is not None and r["uncertain"] is False for r in runs["0"])
    assert all(s["uncertain"] is False for s in speech)
    assert all(r["label"] is not None and r["uncertain"] is True for r in runs["0.99"])
    assert all(s["uncertain"] is True for r in runs["0.99"] for s in r["segments"] if s["speech"])
    # the labels and probabilities do not change: only what is called uncertain
    assert [r["probabilities"] for r in runs["0"]] == [r["probabilities"] for r in runs["0.99"]]
    # the table names each uncertain file's guess
    table = ser("analyze", "--min-confidence", "0.99", *clips).stdout.splitlines()[1:]
    for line, r in zip(table, runs["0.99"], strict=True):
        assert f"  uncertain ({r['label']}?) " in line
        assert f" {r['confidence']:.2f} " in line


@pytest.mark.parametrize(("value", "message"), [
    ("1", "must be at least 0 and less than 1 (a fraction: 0.45 for 45 %), got '1'"),
    ("1.5", "must be at least 0 and less than 1 (a fraction: 0.45 for 45 %), got '1.5'"),
    ("45", "must be at least 0 and less than 1 (a fraction: 0.45 for 45 %), got '45'"),
    ("-0.1", "must be at least 0 and less than 1 (a fraction: 0.45 for 45 %), got '-0.1'"),
    ("45%", "give a fraction, not a percentage (0.45 for 45 %), got '45%'"),
    ("nan", "must be a finite number, got 'nan'"),
    ("high", "not a number: 'high'"),
])
def test_a_bad_min_confidence_is_a_usage_error_naming_the_flag(tiny_model_dir: Path, files: dict[str, Path],
                                                               value: str, message: str) -> None:
    for cmd in (["analyze", files["good"]], ["listen", "--duration", "1"]):
        p = ser(*cmd, "--model", tiny_model_dir, "--min-confidence", value)
        no_traceback(p)
        assert p.returncode == 2, (cmd[0], p.stderr)
        assert p.stderr.splitlines()[-1] == f"ser: error: argument --min-confidence: {message}", (cmd[0], p.stderr)
        assert p.stdout == ""


def test_min_confidence_help_states_the_models_default(tiny_model_dir: Path, tmp_path: Path) -> None:
    from ser_engine.inference.model import ModelMetadata

    shipped = json.loads((ROOT / "models" / "model.json").read_text())
    for cmd in ("analyze", "listen"):
        p = ser(cmd, "--help")
        assert p.returncode == 0, p.stderr
        text = " ".join(p.stdout.split())  # argparse wraps the help
        assert "--min-confidence P" in text
        assert f"(default: the model's own threshold, {shipped['uncertainty_threshold']:g} for the bundled model" \
            in text
        if "confidence_tradeoff" not in shipped:
            assert "on validation" not in text
    # a model with measured points: the help says what its default gives
    d = model_copy(tiny_model_dir, tmp_path / "m", uncertainty_threshold=0.3, confidence_tradeoff=TRADEOFF)
    at = ModelMetadata.load(d / "model.json").tradeoff_at()
    assert at is not None
    p = ser("analyze", "--help", extra_env={"SER_MODEL_DIR": str(d)})
    text = " ".join(p.stdout.split())
    assert "0.3 for $SER_MODEL_DIR's model, which on validation answers about 70 % of the clips, about 72 % of " \
           "those right" in text
    assert at.describe() in text
    # a model folder that cannot be read leaves the plain help (no traceback, exit 0)
    p = ser("analyze", "--help", extra_env={"SER_MODEL_DIR": str(tmp_path / "missing")})
    assert p.returncode == 0, p.stderr
    assert "(default: the model's own threshold; see `ser info`)" in " ".join(p.stdout.split())


def test_info_reports_the_threshold_with_its_validation_coverage_and_accuracy(tiny_model_dir: Path,
                                                                               tmp_path: Path) -> None:
    d = model_copy(tiny_model_dir, tmp_path / "m", uncertainty_threshold=0.2, confidence_tradeoff=TRADEOFF)
    p = ser("info", "--model", d)
    assert p.returncode == 0, p.stderr
    rows = {line[:21].strip(): line[21:].strip() for line in p.stdout.splitlines()}
    assert rows["uncertainty threshold"].startswith("0.2 (a top probability below it is shown as 'uncertain'")
    assert "--min-confidence" in rows["uncertainty threshold"]
    assert rows["on validation"] == ("at 0.2 it answers 90 % of the clips, 64 % of those right "
                                     f"(measured on {TRADEOFF['measured_on']})")
    assert rows["at 0"] == "answers 100 % of the clips, 60 % of those right"
    assert rows["at 0.4"] == "answers 50 % of the clips, 80 % of those right"
    data = json.loads(ser("info", "--model", d, "--json").stdout)
    assert data["uncertainty_threshold"] == 0.2
    assert data["confidence_tradeoff"] == TRADEOFF
    assert data["validation_at_threshold"] == {"min_confidence": 0.2, "coverage": 0.9, "accuracy": 0.64,
                                               "estimated": False, "measured_on": TRADEOFF["measured_on"]}
    # between two measured points: an estimate, said so
    e = model_copy(tiny_model_dir, tmp_path / "e", uncertainty_threshold=0.3, confidence_tradeoff=TRADEOFF)
    rows = {line[:21].strip(): line[21:].strip() for line in ser("info", "--model", e).stdout.splitlines()}
    assert rows["on validation"].startswith("at 0.3 it answers about 70 % of the clips, about 72 % of those right")
    estimate = json.loads(ser("info", "--model", e, "--json").stdout)["validation_at_threshold"]
    assert estimate["estimated"] is True
    assert (estimate["coverage"], estimate["accuracy"]) == pytest.approx((0.7, 0.72))
    # without measured points: nothing about them
    p = ser("info", "--model", tiny_model_dir)
    assert "on validation" not in p.stdout
    data = json.loads(ser("info", "--model", tiny_model_dir, "--json").stdout)
    assert data["validation_at_threshold"] is None
    assert "confidence_tradeoff" not in data


def test_segments_table_has_a_header_and_names_the_guess_of_uncertain_windows(tiny_model_dir: Path, tmp_path: Path,
                                                                              files: dict[str, Path]) -> None:
    d = model_copy(tiny_model_dir, tmp_path / "m", uncertainty_threshold=0.99)
    args = ("analyze", "--model", d, "--workers", "1", "--segments", files["good"], files["silence"])
    data = json.loads(ser(*args, "--format", "json").stdout)
    p = ser(*args)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    header, windows = lines[0], lines[1]
    assert header.split()[:5] == ["file", "duration", "speech", "emotion", "conf"]
    assert windows.startswith("    ")
    assert windows.split() == ["window", "(s)", "audio", "emotion", "conf"]
    conf_end = windows.index("conf") + len("conf")  # numbers are right-aligned under their header
    good = data[0]
    file_row = next(line for line in lines if "good.wav" in line)
    assert f"  uncertain ({good['label']}?) " in file_row
    assert file_row[:header.index("conf") + len("conf")].endswith(f"{good['confidence']:.2f}")
    rows = [line for line in lines[2:] if line.startswith("    ")]
    speech = [s for s in good["segments"] if s["speech"]]
    speech_rows = [line for line in rows if line.split()[1] == "speech"]
    assert len(speech_rows) == len(speech) > 0
    for line, seg in zip(speech_rows, speech, strict=False):
        assert seg["uncertain"] is True
        assert f" uncertain ({seg['label']}?) " in line
        assert line[:conf_end].endswith(f"{seg['probabilities'][seg['label']]:.2f}")
    silence_rows = [line for line in rows if line.split()[1] == "silence"]
    assert silence_rows
    assert all(line.split()[2:] == ["-"] for line in silence_rows)  # no emotion, no confidence
    # without --segments there is no window header; with a model that is never uncertain, the plain label
    p = ser("analyze", "--model", d, "--min-confidence", "0", "--segments", files["good"])
    assert f"  {good['label']} " in p.stdout
    assert "uncertain" not in p.stdout
    plain = ser("analyze", "--model", d, files["good"]).stdout.splitlines()
    assert len(plain) == 2
    assert "window (s)" not in plain[0] + plain[1]


@pytest.mark.mic
def test_listen_with_min_confidence(tiny_model_dir: Path, virtual_mic: VirtualMic) -> None:
    proc, _out, err, lines = _listen_while_speech_plays(virtual_mic, tiny_model_dir, "--duration", "8",
                                                         "--min-confidence", "0.9999")
    assert proc.returncode == 0, err
    speech = [x for x in lines if x["speech"]]
    assert speech
    assert all(x["uncertain"] is True and x["label"] is not None for x in speech)
    # the table's start line says the minimum confidence in use
    p = ser("listen", "--model", tiny_model_dir, "--duration", "1", "--min-confidence", "0.5", timeout=60)
    assert p.returncode == 0, p.stderr
    assert "; minimum confidence 0.5" in p.stderr
