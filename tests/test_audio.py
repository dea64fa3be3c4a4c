"""Audio decoding: formats, rates, channels, resampling, and every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_engine.dsp.audio import (
    StreamResampler,
    audio_info,
    find_audio_files,
    iter_audio_blocks,
    load_audio,
    resample,
)
from ser_engine.errors import AudioError, ParameterError

SR = 16000


def tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spec)])


# ----------------------------------------------------------------------------- formats
@pytest.mark.parametrize(
    ("name", "fmt", "subtype", "tol"),
    [
        ("pcm8.wav", "WAV", "PCM_U8", 2e-2),
        ("pcm16.wav", "WAV", "PCM_16", 1e-3),
        ("pcm24.wav", "WAV", "PCM_24", 1e-3),
        ("pcm32.wav", "WAV", "PCM_32", 1e-3),
        ("float.wav", "WAV", "FLOAT", 1e-3),
        ("double.wav", "WAV", "DOUBLE", 1e-3),
        ("clip.flac", "FLAC", "PCM_16", 1e-3),
        ("clip.ogg", "OGG", "VORBIS", None),
        ("clip.opus", "OGG", "OPUS", None),
        ("clip.mp3", "MP3", "MPEG_LAYER_III", None),
    ],
)
def test_formats_decode_to_the_same_signal(
    tmp_path: Path, name: str, fmt: str, subtype: str, tol: float | None
) -> None:
    y = tone(1.0, SR)
    path = tmp_path / name
    sf.write(str(path), y, SR, format=fmt, subtype=subtype)
    clip = load_audio(path)
    assert clip.sample_rate == SR
    assert clip.source_rate == SR
    assert clip.channels == 1
    assert clip.samples.dtype == np.float32
    assert clip.samples.ndim == 1
    assert abs(clip.duration_s - 1.0) < 0.06  # lossy codecs may add padding
    assert dominant_freq(clip.samples, SR) == pytest.approx(440, abs=2)
    if tol is not None:
        np.testing.assert_allclose(clip.samples, y, atol=tol)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000, 192000])
def test_any_rate_is_resampled_to_16k(tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"r{rate}.wav"
    sf.write(str(path), tone(2.0, rate, freq=1000.0), rate, subtype="PCM_24")
    clip = load_audio(path)
    assert clip.source_rate == rate
    assert clip.sample_rate == SR
    assert abs(clip.samples.shape[0] - 2 * SR) <= 2
    assert dominant_freq(clip.samples, SR) == pytest.approx(1000, abs=1)
    core = clip.samples[2000:-2000]
    assert np.sqrt(np.mean(core**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)  # no level change


def test_high_frequencies_are_removed_not_aliased(tmp_path: Path) -> None:
    path = tmp_path / "hf.wav"
    sf.write(str(path), tone(1.0, 48000, freq=12000.0), 48000, subtype="FLOAT")  # above 8 kHz Nyquist
    y = load_audio(path).samples
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 1e-3


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_downmixed(tmp_path: Path, channels: int) -> None:
    base = tone(1.0, 44100, freq=500.0)
    data = np.stack([base * (i + 1) / channels for i in range(channels)], axis=1)
    path = tmp_path / f"ch{channels}.wav"
    sf.write(str(path), data, 44100, subtype="FLOAT")
    clip = load_audio(path)
    assert clip.channels == channels
    expected_rms = np.mean([(i + 1) / channels for i in range(channels)]) * 0.5 / np.sqrt(2)
    assert np.sqrt(np.mean(clip.samples[2000:-2000] ** 2)) == pytest.approx(expected_rms, rel=0.01)


def test_clipping_is_kept(tmp_path: Path) -> None:
    y = np.clip(tone(1.0, SR, amp=3.0), -1, 1)
    path = tmp_path / "clipped.wav"
    sf.write(str(path), y, SR, subtype="PCM_16")
    clip = load_audio(path)
    assert clip.samples.max() == pytest.approx(1.0, abs=1e-3)
    assert clip.samples.min() <= -0.999


def test_non_ascii_path(tmp_path: Path) -> None:
    d = tmp_path / "émotions 音声"
    d.mkdir()
    path = d / "ça va – 你好.flac"
    sf.write(str(path), tone(0.5, SR), SR)
    assert load_audio(path).samples.shape[0] == SR // 2
    files, problems = find_audio_files([tmp_path])
    assert files == [path]
    assert problems == []


def test_blocks_equal_whole_file_and_resampler_streams(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = (rng.normal(0, 0.1, 44100 * 7)).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(str(path), y, 44100, subtype="FLOAT")
    info: dict[str, object] = {}
    blocks = list(iter_audio_blocks(path, block_s=0.37, info=info))
    assert len(blocks) > 10
    assert info["source_rate"] == 44100
    streamed = np.concatenate(blocks)
    whole = resample(y, orig_sr=44100, target_sr=SR)
    assert abs(len(streamed) - len(whole)) <= 1
    n = min(len(streamed), len(whole))
    np.testing.assert_allclose(streamed[:n], whole[:n], atol=1e-4)
    r = StreamResampler(SR, SR)
    assert np.array_equal(r.process(y[:100]), y[:100])


def test_audio_info(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(str(path), np.zeros((300, 2), np.float32), 22050)
    info = audio_info(path)
    assert (info.frames, info.sample_rate, info.channels) == (300, 22050, 2)
    assert info.duration_s == pytest.approx(300 / 22050)


def test_resample_validates() -> None:
    with pytest.raises(ParameterError):
        resample(np.zeros(10), orig_sr=1000, target_sr=SR)
    with pytest.raises(ParameterError):
        resample(np.zeros((2, 10)), orig_sr=SR, target_sr=SR)


# ----------------------------------------------------------------------------- bad input
def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_bad(tmp_path: Path, kind: str) -> Path:
    if kind == "empty file":
        return write_bytes(tmp_path / "empty.wav", b"")
    if kind == "zero samples":
        p = tmp_path / "zero.wav"
        sf.write(str(p), np.zeros(0, np.float32), SR)
        return p
    if kind == "truncated header":
        full = tmp_path / "full.wav"
        sf.write(str(full), tone(0.5, SR), SR)
        return write_bytes(tmp_path / "truncated.wav", full.read_bytes()[:30])
    if kind == "random bytes":
        return write_bytes(tmp_path / "random.wav", np.random.default_rng(0).bytes(20000))
    if kind == "text file":
        return write_bytes(tmp_path / "notes.wav", b"just some notes\nnot audio at all\n" * 50)
    if kind == "missing":
        return tmp_path / "does-not-exist.wav"
    if kind == "directory":
        (tmp_path / "folder.wav").mkdir()
        return tmp_path / "folder.wav"
    if kind == "nan samples":
        p = tmp_path / "nan.wav"
        y = tone(1.0, SR)
        y[8000] = np.nan
        sf.write(str(p), y, SR, subtype="FLOAT")
        return p
    if kind == "inf samples":
        p = tmp_path / "inf.wav"
        y = tone(1.0, SR)
        y[4000:4010] = np.inf
        sf.write(str(p), y, SR, subtype="FLOAT")
        return p
    if kind == "rate out of range":
        p = tmp_path / "slow.wav"
        sf.write(str(p), np.zeros(4000, np.float32), 4000)
        return p
    raise AssertionError(kind)


BAD = {
    "empty file": "empty file",
    "zero samples": "no audio samples",
    "truncated header": "corrupt or truncated WAV",
    "random bytes": "unsupported or unrecognised audio format",
    "text file": "not an audio file (it contains text)",
    "missing": "file not found",
    "directory": "is a directory",
    "nan samples": "NaN or infinite samples (first at 0.500 s)",
    "inf samples": "NaN or infinite samples (first at 0.250 s)",
    "rate out of range": "outside the supported 8-192 kHz",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_files_raise_one_clear_error(tmp_path: Path, kind: str) -> None:
    path = make_bad(tmp_path, kind)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert BAD[kind] in msg, msg
    assert "Traceback" not in msg


def test_permission_denied_is_reported_for_unreadable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root every file is readable, so simulate the OS refusing access."""
    p = tmp_path / "locked.wav"
    sf.write(str(p), tone(0.1, SR), SR)
    import ser_engine.dsp.audio as audio

    def refuse(path: bytes) -> None:
        raise PermissionError(13, "Permission denied", os.fsdecode(path))

    monkeypatch.setattr(sf, "SoundFile", refuse)
    real_access = os.access
    monkeypatch.setattr(audio.os, "access", lambda f, mode: False if str(f) == str(p) else real_access(f, mode))
    with pytest.raises(AudioError, match=r"locked\.wav: permission denied"):
        load_audio(p)


# ----------------------------------------------------------------------------- discovery
def test_find_audio_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hi")
    for rel in ["a/1.wav", "a/b/2.FLAC", "a/b/3.mp3", "a/.hidden.wav", "a/b/notes.txt"]:
        (tmp_path / rel).write_bytes(b"x")
    explicit = tmp_path / "docs" / "readme.txt"
    files, problems = find_audio_files(
        [tmp_path / "a", explicit, tmp_path / "empty", tmp_path / "docs", tmp_path / "nope", tmp_path / "a" / "1.wav"]
    )
    assert files == [tmp_path / "a/1.wav", tmp_path / "a/b/2.FLAC", tmp_path / "a/b/3.mp3", explicit]
    msgs = dict((str(p), m) for p, m in problems)
    assert "no audio files found" in msgs[str(tmp_path / "empty")]
    assert "no audio files found" in msgs[str(tmp_path / "docs")]
    assert "file not found" in msgs[str(tmp_path / "nope")]
    assert find_audio_files(str(tmp_path / "a" / "1.wav")) == ([tmp_path / "a" / "1.wav"], [])


@pytest.mark.corpus
def test_corpus_files_load(corpus_dir: Path) -> None:
    for f in [
        next((corpus_dir / "ravdess" / "Actor_01").glob("*.flac")),
        next((corpus_dir / "crema-d").glob("*.ogg")),
        next((corpus_dir / "savee").glob("*.flac")),
    ]:
        clip = load_audio(f)
        assert clip.sample_rate == SR
        assert 0.5 < clip.duration_s < 10
        assert 1e-4 < np.abs(clip.samples).max() <= 1.0
