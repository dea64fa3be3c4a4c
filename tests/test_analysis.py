"""File analysis: training's windowing, dominant emotion, voiced time, no-speech files, bad files, long files."""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import synth_speechlike
from reference_windows import frame_windows

from ser_engine.dsp.audio import load_audio
from ser_engine.dsp.features import fit_to_length
from ser_engine.dsp.gate import window_is_speech
from ser_engine.errors import ParameterError
from ser_engine.files.analysis import FileResult, analyze_file, analyze_paths, default_workers
from ser_engine.inference.model import EmotionModel

SR = 16000
KEYS = ["path", "ok", "error", "duration_s", "speech_s", "label", "confidence", "uncertain", "probabilities",
        "segments", "warning"]
SEGMENT_KEYS = ["start_s", "end_s", "speech", "label", "uncertain", "probabilities"]


def write(path: Path, y: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), y, sr, subtype=subtype)
    return path


def test_dominant_emotion_is_the_mean_over_speech_windows(tmp_path: Path, tiny_model: EmotionModel) -> None:
    quiet = np.random.default_rng(0).normal(0, 1e-4, 4 * SR).astype(np.float32)
    y = np.concatenate([quiet, synth_speechlike(seconds=5.0, seed=2), quiet])
    path = write(tmp_path / "talk.wav", y, subtype="FLOAT")
    res = analyze_file(path, tiny_model)
    assert res.ok
    assert res.error is None
    assert res.duration_s == pytest.approx(13.0)
    cfg = tiny_model.feature_config
    windows, starts = frame_windows(y=load_audio(path).samples, config=cfg)
    assert [s.start_s for s in res.segments] == pytest.approx((starts / SR).tolist())
    speech = [window_is_speech(w, sample_rate=SR) for w in windows]
    assert [s.speech for s in res.segments] == speech
    assert 0 < sum(speech) < len(speech)  # silent windows at both ends
    speech_frames = tiny_model.featurizer.frames(windows[np.array(speech)])
    expected = tiny_model.predict(speech_frames).probabilities.mean(axis=0)
    got = np.array([res.probabilities[k] for k in tiny_model.labels])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert res.label == tiny_model.labels[int(np.argmax(expected))]
    assert res.confidence == pytest.approx(float(expected.max()), abs=1e-5)
    assert res.speech_s == pytest.approx(5.0, abs=0.5)  # the voice, not the 3 s windows around it
    d = res.to_dict()
    assert list(d) == KEYS
    assert list(d["segments"][0]) == SEGMENT_KEYS
    assert d["segments"][0]["label"] is None
    assert d["segments"][0]["probabilities"] == {}


def test_silence_only_file_says_no_speech(tmp_path: Path, tiny_model: EmotionModel) -> None:
    res = analyze_file(write(tmp_path / "silence.wav", np.zeros(5 * SR, np.float32)), tiny_model)
    assert res.ok
    assert res.label is None
    assert res.confidence is None
    assert res.speech_s == 0.0
    assert res.probabilities == {}
    assert res.segments
    assert not any(s.speech for s in res.segments)
    assert res.duration_s == pytest.approx(5.0)


def test_short_clip_is_centre_padded_like_training(tmp_path: Path, tiny_model: EmotionModel) -> None:
    y = synth_speechlike(seconds=1.2, seed=4)
    res = analyze_file(write(tmp_path / "short.wav", y, subtype="FLOAT"), tiny_model)
    assert res.ok
    assert res.label is not None
    assert len(res.segments) == 1
    assert res.segments[0].start_s == 0
    assert res.segments[0].end_s == pytest.approx(1.2)
    expected = tiny_model.predict(tiny_model.featurizer.frames(fit_to_length(y=y, length=48000))[None]).probabilities[0]
    np.testing.assert_allclose([res.probabilities[k] for k in tiny_model.labels], expected, atol=1e-5)


def test_50ms_clip(tmp_path: Path, tiny_model: EmotionModel) -> None:
    # too short for the gate to hear speech in: a failure saying so, never "no speech"
    res = analyze_file(write(tmp_path / "blip.wav", synth_speechlike(seconds=0.05)), tiny_model)
    assert not res.ok
    assert res.error is not None
    assert "too short to analyse (0.05 s of audio" in res.error
    assert res.duration_s == pytest.approx(0.05)
    assert res.label is None


@pytest.mark.parametrize("rate", [8000, 44100, 96000])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_rates_and_channels(tmp_path: Path, tiny_model: EmotionModel, rate: int, channels: int) -> None:
    y16 = synth_speechlike(seconds=4.0, seed=1)
    from ser_engine.dsp.audio import resample

    y = resample(y16, orig_sr=SR, target_sr=rate)
    data = np.repeat(y[:, None], channels, axis=1)
    res = analyze_file(write(tmp_path / f"x{rate}_{channels}.wav", data, sr=rate, subtype="PCM_24"), tiny_model)
    ref = analyze_file(write(tmp_path / "ref.wav", y16, subtype="FLOAT"), tiny_model)
    assert res.ok
    assert res.label == ref.label
    assert res.duration_s == pytest.approx(4.0, abs=1e-3)
    if rate >= SR:  # same content up to resampling error
        np.testing.assert_allclose(
            [res.probabilities[k] for k in tiny_model.labels], [ref.probabilities[k] for k in tiny_model.labels],
            atol=0.02,
        )


def test_clipping_and_nan(tmp_path: Path, tiny_model: EmotionModel) -> None:
    loud = np.clip(synth_speechlike(seconds=3.5) * 8, -1, 1)
    res = analyze_file(write(tmp_path / "clipped.wav", loud), tiny_model)
    assert res.ok
    assert res.label is not None
    bad = synth_speechlike(seconds=3.5)
    bad[100] = np.nan
    res = analyze_file(write(tmp_path / "nan.wav", bad, subtype="FLOAT"), tiny_model)
    assert not res.ok
    assert "nan.wav" in str(res.error)
    assert "NaN" in str(res.error)


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
    assert by_name["good1.wav"].ok
    assert by_name["zz_good2.flac"].ok
    assert {r.path for r in results if r.ok} == {good1, good2}
    for name, reason in [("empty.wav", "empty file"), ("text.wav", "contains text"),
                         ("random.wav", "unrecognised"), ("sub", "no audio files"),
                         ("missing.wav", "not found")]:
        r = by_name[name]
        assert not r.ok, r.error
        assert name in str(r.error), r.error
        assert reason in str(r.error), r.error
        assert r.label is None
        assert r.to_dict()["ok"] is False


# ----------------------------------------------------------------------------- what is a bad file
@pytest.mark.parametrize("bug", [TypeError, ValueError, RuntimeError])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_bug_inside_analysis_propagates_instead_of_failing_the_file(
    tmp_path: Path, tiny_model: EmotionModel, monkeypatch: pytest.MonkeyPatch, workers: int, bug: type[Exception]
) -> None:
    corrupt = tmp_path / "a_corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(40))
    good = write(tmp_path / "b_good.wav", synth_speechlike(seconds=3.5, seed=1))
    before = list(analyze_paths([corrupt, good], tiny_model, workers=workers))
    assert [r.ok for r in before] == [False, True]
    assert "a_corrupt.wav: corrupt or truncated WAV" in str(before[0].error)

    def buggy_normalize(*_: object) -> np.ndarray:
        raise bug("unsupported operand type(s) for -: 'NoneType' and 'float'")

    monkeypatch.setattr(type(tiny_model.featurizer), "normalize", buggy_normalize)
    results = analyze_paths([corrupt, good], tiny_model, workers=workers)
    assert not next(results).ok  # the corrupt file is still a failed row
    with pytest.raises(bug, match="NoneType") as info:
        next(results)
    assert info.traceback[-1].name == "buggy_normalize"  # the traceback reaches the bug


def test_a_bug_after_decoding_is_not_a_decoding_failure(
    tmp_path: Path, tiny_model: EmotionModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ser_engine.dsp.audio as audio

    good = write(tmp_path / "good.wav", synth_speechlike(seconds=3.5, seed=1))

    def broken(*_: object) -> np.ndarray:
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr(audio.StreamResampler, "process", broken)
    with pytest.raises(ValueError, match="broadcast"):
        analyze_file(good, tiny_model)


def test_a_read_error_is_a_bad_file_naming_it(
    tmp_path: Path, tiny_model: EmotionModel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "disk.wav", synth_speechlike(seconds=3.5, seed=1))

    def eio(*_: object, **__: object) -> np.ndarray:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(sf.SoundFile, "read", eio)
    with caplog.at_level("INFO", logger="ser.analysis"):
        res = analyze_file(path, tiny_model)
    assert not res.ok
    assert str(res.error).startswith(str(path))
    assert "Input/output error" in str(res.error)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [("ser.analysis", "INFO", res.error)]


class _Session:
    """Stands in for the ONNX Runtime session: NaN logits, or a runtime failure."""

    def __init__(self, model: EmotionModel, *, fail: bool) -> None:
        self._real, self._fail, self._n = model._session, fail, len(model.labels)

    def run(self, _outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._fail:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : bad allocation")
        (x,) = feeds.values()
        return [np.full((x.shape[0], self._n), np.nan, np.float32)]

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


def test_non_finite_model_output_fails_the_file_and_inference_failure_stops_the_batch(
    tmp_path: Path, tiny_model: EmotionModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ser_engine.errors import SerError

    good = write(tmp_path / "voice.wav", synth_speechlike(seconds=3.5, seed=1))
    monkeypatch.setattr(tiny_model, "_session", _Session(tiny_model, fail=False))
    (res,) = analyze_paths([good], tiny_model)
    assert not res.ok
    assert res.label is None
    assert res.error == f"{good}: the model produced non-finite output (NaN or infinity)"
    monkeypatch.setattr(tiny_model, "_session", _Session(tiny_model, fail=True))
    with pytest.raises(SerError, match="inference failed"):
        list(analyze_paths([good], tiny_model))


def test_two_workers_give_the_same_results_in_order(tmp_path: Path, tiny_model: EmotionModel) -> None:
    paths = [write(tmp_path / f"f{i:02d}.wav", synth_speechlike(seconds=2 + i % 4, seed=i)) for i in range(10)]
    one = [r.to_dict() for r in analyze_paths(paths, tiny_model, workers=1)]
    two = [r.to_dict() for r in analyze_paths(paths, tiny_model, workers=2)]
    assert one == two
    assert [d["path"] for d in two] == [str(p) for p in paths]


def test_cancel(tmp_path: Path, tiny_model: EmotionModel) -> None:
    paths = [write(tmp_path / f"c{i}.wav", synth_speechlike(seconds=3, seed=i)) for i in range(4)]
    cancel = threading.Event()
    cancel.set()
    assert list(analyze_paths(paths, tiny_model, cancel=cancel)) == []
    res = analyze_file(paths[0], tiny_model, cancel=cancel)
    assert not res.ok
    assert str(res.error).endswith("cancelled")


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
        from ser_engine.dsp.audio import resample

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
    assert res.speech_s == pytest.approx(600, abs=60 * 0.5)  # 10 min of speech, to within a hop per burst
    assert len(res.speech_spans) == 60
    assert len(res.segments) == 7195  # (3600 - 3) / 0.5 + 1 windows


def test_result_to_dict_for_failures() -> None:
    d = FileResult(path=Path("x.wav"), ok=False, error="x.wav: empty file (0 bytes)").to_dict()
    assert list(d) == KEYS
    assert d["segments"] == []
    assert d["probabilities"] == {}
    assert d["label"] is None


def test_speech_time_and_spans_follow_the_voice_not_the_windows(tmp_path: Path, tiny_model: EmotionModel) -> None:
    """7.6 s of voiced speech between 6 s silences: 7.6 s of speech, one span from 6.0 to 13.6 s (to a hop)."""
    silence = np.zeros(6 * SR, np.float32)
    voiced = synth_speechlike(seconds=7.6, seed=6)
    res = analyze_file(write(tmp_path / "framed.wav", np.concatenate([silence, voiced, silence]), subtype="FLOAT"),
                       tiny_model)
    hop = 0.5
    assert res.ok
    assert res.duration_s == pytest.approx(19.6)
    assert res.speech_s == pytest.approx(7.6, abs=hop)
    assert len(res.speech_spans) == 1
    start, end = res.speech_spans[0]
    assert start == pytest.approx(6.0, abs=hop)
    assert end == pytest.approx(13.6, abs=hop)
    # the windows the model classified still reach into the silence (3 s windows), the voiced time does not
    speech_windows = [s for s in res.segments if s.speech]
    covered = max(s.end_s for s in speech_windows) - min(s.start_s for s in speech_windows)
    assert covered > 7.6 + 2 * hop
    # the clip summary is the mean over the speech windows only
    mean = np.mean([[s.probabilities[k] for k in tiny_model.labels] for s in speech_windows], axis=0)
    np.testing.assert_allclose([res.probabilities[k] for k in tiny_model.labels], mean, atol=1e-6)


@pytest.mark.corpus
def test_corpus_clips_with_leading_silence_report_less_speech_than_duration(
    corpus_dir: Path, shipped_model: EmotionModel
) -> None:
    clips = sorted((corpus_dir / "ravdess").glob("Actor_0[1-2]/*.flac"))[:: 12]
    results = list(analyze_paths(clips, shipped_model, workers=2, expand=False))
    assert len(results) >= 8
    assert all(r.ok and r.label is not None for r in results)
    for r in results:
        assert 0.5 < r.speech_s < r.duration_s - 0.5, (r.path.name, r.speech_s, r.duration_s)
        # the sentence starts after the clip's silent start (RAVDESS clips open with about a second of room)
        sentence = max(r.speech_spans, key=lambda span: span[1] - span[0])
        assert sentence[0] > 0.5, (r.path.name, r.speech_spans)
        assert r.speech_spans[0][0] > 0.1, (r.path.name, r.speech_spans)


def test_default_workers_is_the_usable_cores(tmp_path: Path, tiny_model: EmotionModel) -> None:
    import os

    assert default_workers() == len(os.sched_getaffinity(0))
    paths = [write(tmp_path / f"w{i}.wav", synth_speechlike(seconds=2, seed=i)) for i in range(3)]
    auto = [r.to_dict() for r in analyze_paths(paths, tiny_model, workers=None)]
    assert auto == [r.to_dict() for r in analyze_paths(paths, tiny_model, workers=1)]


def test_native_thread_pools_are_pinned_while_a_batch_runs(tmp_path: Path, tiny_model: EmotionModel) -> None:
    from threadpoolctl import threadpool_info

    paths = [write(tmp_path / f"t{i}.wav", synth_speechlike(seconds=2, seed=i)) for i in range(3)]
    seen: list[int] = []
    for _ in analyze_paths(paths, tiny_model, workers=2):
        seen += [pool["num_threads"] for pool in threadpool_info()]
    assert seen
    assert set(seen) == {1}
