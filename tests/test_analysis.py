"""File analysis: training's windowing, dominant emotion, no-speech files, bad files, long files."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import synth_speechlike

from ser_engine.analysis import FileResult, analyze_file, analyze_paths, iter_windows
from ser_engine.audio import load_audio
from ser_engine.config import FeatureConfig
from ser_engine.errors import ParameterError
from ser_engine.features import fit_to_length, frame_windows
from ser_engine.gate import window_is_speech
from ser_engine.model import EmotionModel

SR = 16000
KEYS = ["path", "ok", "error", "duration_s", "speech_s", "label", "confidence", "uncertain", "probabilities",
        "segments", "warning"]
SEGMENT_KEYS = ["start_s", "end_s", "speech", "label", "uncertain", "probabilities"]


@pytest.mark.parametrize("n", [1, 800, 47999, 48000, 48001, 55999, 56000, 100_000, 123_457])
@pytest.mark.parametrize("block", [1000, 7777, 200_000])
def test_iter_windows_equals_frame_windows(n: int, block: int) -> None:
    cfg = FeatureConfig()
    y = np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32)
    expected, starts = frame_windows(y=y, config=cfg)
    got = list(iter_windows((y[i : i + block] for i in range(0, n, block)), window=48000, hop=8000))
    assert [g[0] for g in got] == starts.tolist()
    assert all(g[1] == min(n, 48000) for g in got)
    np.testing.assert_array_equal(np.stack([g[2] for g in got]), expected)


def write(path: Path, y: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), y, sr, subtype=subtype)
    return path


def test_dominant_emotion_is_the_mean_over_speech_windows(tmp_path: Path, tiny_model: EmotionModel) -> None:
    quiet = np.random.default_rng(0).normal(0, 1e-4, 4 * SR).astype(np.float32)
    y = np.concatenate([quiet, synth_speechlike(seconds=5.0, seed=2), quiet])
    path = write(tmp_path / "talk.wav", y, subtype="FLOAT")
    res = analyze_file(path, tiny_model)
    assert res.ok and res.error is None
    assert res.duration_s == pytest.approx(13.0)
    cfg = tiny_model.feature_config
    windows, starts = frame_windows(y=load_audio(path).samples, config=cfg)
    assert [s.start_s for s in res.segments] == pytest.approx((starts / SR).tolist())
    speech = [window_is_speech(w, sample_rate=SR) for w in windows]
    assert [s.speech for s in res.segments] == speech
    assert 0 < sum(speech) < len(speech)  # silent windows at both ends
    expected = tiny_model.predict_windows(windows[np.array(speech)]).mean(axis=0)
    got = np.array([res.probabilities[k] for k in tiny_model.labels])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert res.label == tiny_model.labels[int(np.argmax(expected))]
    assert res.confidence == pytest.approx(float(expected.max()), abs=1e-5)
    assert 5.0 <= res.speech_s <= 11.0
    d = res.to_dict()
    assert list(d) == KEYS and list(d["segments"][0]) == SEGMENT_KEYS
    assert d["segments"][0]["label"] is None and d["segments"][0]["probabilities"] == {}


def test_silence_only_file_says_no_speech(tmp_path: Path, tiny_model: EmotionModel) -> None:
    res = analyze_file(write(tmp_path / "silence.wav", np.zeros(5 * SR, np.float32)), tiny_model)
    assert res.ok and res.label is None and res.confidence is None
    assert res.speech_s == 0.0 and res.probabilities == {}
    assert res.segments and not any(s.speech for s in res.segments)
    assert res.duration_s == pytest.approx(5.0)


def test_short_clip_is_centre_padded_like_training(tmp_path: Path, tiny_model: EmotionModel) -> None:
    y = synth_speechlike(seconds=1.2, seed=4)
    res = analyze_file(write(tmp_path / "short.wav", y, subtype="FLOAT"), tiny_model)
    assert res.ok and res.label is not None
    assert len(res.segments) == 1 and res.segments[0].start_s == 0 and res.segments[0].end_s == pytest.approx(1.2)
    expected = tiny_model.predict_windows(fit_to_length(y=y, length=48000)[None])[0]
    np.testing.assert_allclose([res.probabilities[k] for k in tiny_model.labels], expected, atol=1e-5)


def test_50ms_clip(tmp_path: Path, tiny_model: EmotionModel) -> None:
    res = analyze_file(write(tmp_path / "blip.wav", synth_speechlike(seconds=0.05)), tiny_model)
    assert res.ok and res.duration_s == pytest.approx(0.05)
    assert len(res.segments) == 1 and res.segments[0].end_s == pytest.approx(0.05)
    assert res.speech_s <= 0.05


@pytest.mark.parametrize("rate", [8000, 44100, 96000])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_rates_and_channels(tmp_path: Path, tiny_model: EmotionModel, rate: int, channels: int) -> None:
    y16 = synth_speechlike(seconds=4.0, seed=1)
    from ser_engine.audio import resample

    y = resample(y16, orig_sr=SR, target_sr=rate)
    data = np.repeat(y[:, None], channels, axis=1)
    res = analyze_file(write(tmp_path / f"x{rate}_{channels}.wav", data, sr=rate, subtype="PCM_24"), tiny_model)
    ref = analyze_file(write(tmp_path / "ref.wav", y16, subtype="FLOAT"), tiny_model)
    assert res.ok and res.label == ref.label
    assert res.duration_s == pytest.approx(4.0, abs=1e-3)
    if rate >= SR:  # same content up to resampling error
        np.testing.assert_allclose(
            [res.probabilities[k] for k in tiny_model.labels], [ref.probabilities[k] for k in tiny_model.labels],
            atol=0.02,
        )


def test_clipping_and_nan(tmp_path: Path, tiny_model: EmotionModel) -> None:
    loud = np.clip(synth_speechlike(seconds=3.5) * 8, -1, 1)
    res = analyze_file(write(tmp_path / "clipped.wav", loud), tiny_model)
    assert res.ok and res.label is not None
    bad = synth_speechlike(seconds=3.5)
    bad[100] = np.nan
    res = analyze_file(write(tmp_path / "nan.wav", bad, subtype="FLOAT"), tiny_model)
    assert not res.ok and "nan.wav" in str(res.error) and "NaN" in str(res.error)


def test_batch_carries_on_after_bad_files(tmp_path: Path, tiny_model: EmotionModel) -> None:
    good1 = write(tmp_path / "good1.wav", synth_speechlike(seconds=3.5, seed=1))
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("hello\n" * 100)
    (tmp_path / "random.wav").write_bytes(np.random.default_rng(0).bytes(5000))
    good2 = write(tmp_path / "zz_good2.flac", synth_speechlike(seconds=3.5, seed=2))
    (tmp_path / "sub").mkdir()
    results = list(analyze_paths([tmp_path, tmp_path / "sub", tmp_path / "missing.wav"], tiny_model))
    by_name = {r.path.name: r for r in results}
    assert set(by_name) == {"sub", "missing.wav", "empty.wav", "good1.wav", "random.wav", "text.wav",
                            "zz_good2.flac"}
    assert by_name["good1.wav"].ok and by_name["zz_good2.flac"].ok
    assert {r.path for r in results if r.ok} == {good1, good2}
    for name, reason in [("empty.wav", "empty file"), ("text.wav", "contains text"),
                         ("random.wav", "unrecognised"), ("sub", "no audio files"),
                         ("missing.wav", "not found")]:
        r = by_name[name]
        assert not r.ok and name in str(r.error) and reason in str(r.error), r.error
        assert r.label is None and r.to_dict()["ok"] is False


def test_two_workers_give_the_same_results_in_order(tmp_path: Path, tiny_model: EmotionModel) -> None:
    paths = [write(tmp_path / f"f{i:02d}.wav", synth_speechlike(seconds=2 + i % 4, seed=i)) for i in range(10)]
    one = [r.to_dict() for r in analyze_paths(paths, tiny_model, workers=1)]
    two = [r.to_dict() for r in analyze_paths(paths, tiny_model, workers=2)]
    assert one == two and [d["path"] for d in two] == [str(p) for p in paths]


def test_cancel(tmp_path: Path, tiny_model: EmotionModel) -> None:
    paths = [write(tmp_path / f"c{i}.wav", synth_speechlike(seconds=3, seed=i)) for i in range(4)]
    cancel = threading.Event()
    cancel.set()
    assert list(analyze_paths(paths, tiny_model, cancel=cancel)) == []
    res = analyze_file(paths[0], tiny_model, cancel=cancel)
    assert not res.ok and str(res.error).endswith("cancelled")


def test_bad_parameters_are_caller_errors(tmp_path: Path, tiny_model: EmotionModel) -> None:
    p = write(tmp_path / "a.wav", synth_speechlike(seconds=1))
    with pytest.raises(ParameterError):
        analyze_file(p, tiny_model, window_s=-1)
    with pytest.raises(ParameterError):
        analyze_file(p, tiny_model, gate_sensitivity=3)
    with pytest.raises(ParameterError):
        list(analyze_paths([p], tiny_model, workers=0))


def test_custom_window_and_hop(tmp_path: Path, tiny_model: EmotionModel) -> None:
    p = write(tmp_path / "a.wav", synth_speechlike(seconds=6))
    res = analyze_file(p, tiny_model, window_s=2.0, hop_s=1.0)
    assert [s.start_s for s in res.segments] == pytest.approx([0, 1, 2, 3, 4])
    assert all(s.end_s - s.start_s == pytest.approx(2.0) for s in res.segments)


@pytest.mark.slow
def test_one_hour_file_in_bounded_memory(tmp_path: Path, tiny_model: EmotionModel) -> None:
    path = tmp_path / "hour.flac"
    rng = np.random.default_rng(0)
    burst = synth_speechlike(seconds=10.0, seed=5)
    with sf.SoundFile(str(path), "w", samplerate=22050, channels=1, format="FLAC", subtype="PCM_16") as f:
        from ser_engine.audio import resample

        speech = resample(burst, orig_sr=SR, target_sr=22050)
        for _ in range(60):  # 60 x (10 s speech + 50 s quiet noise) at 22.05 kHz: resampled while read
            f.write(np.concatenate([speech, rng.normal(0, 1e-4, 50 * 22050)]))
    tracemalloc.start()
    res = analyze_file(path, tiny_model)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert res.ok, res.error
    assert res.duration_s == pytest.approx(3600.0, abs=0.01)
    assert peak < 150e6, f"peak traced memory {peak / 1e6:.0f} MB"  # a decoded hour at 16 kHz alone is 230 MB
    assert 600 <= res.speech_s <= 1100  # 10 min of speech, windows overlap its edges
    assert len(res.segments) == 7195  # (3600 - 3) / 0.5 + 1 windows


def test_result_to_dict_for_failures() -> None:
    d = FileResult(path=Path("x.wav"), ok=False, error="x.wav: empty file (0 bytes)").to_dict()
    assert list(d) == KEYS and d["segments"] == [] and d["probabilities"] == {} and d["label"] is None
