"""Whisper encoder, embedder and CTranslate2 reader on tiny random weights (no big weights file)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from ser_engine.errors import ParameterError
from training.whisper.ct2 import CT2FormatError, read_ct2_model
from training.whisper.weights import EncoderWeights, tiny_encoder_weights

pytestmark = [pytest.mark.training]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny() -> EncoderWeights:
    return tiny_encoder_weights(seed=3)


@pytest.fixture(scope="module")
def tiny_onnx(tiny: EncoderWeights, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from training.whisper.embedder import export_embedder

    folder = tmp_path_factory.mktemp("tiny-embedder")
    return {
        "float32": export_embedder(tiny, n_blocks=3, path=folder / "f32.onnx", quantize_int8=False),
        "int8": export_embedder(tiny, n_blocks=3, path=folder / "int8.onnx"),
    }


def _features(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(-0.5, 0.4, size=shape).astype(np.float32)


@pytest.mark.parametrize("n_frames", [3, 297, 298])
def test_block_outputs_have_ceil_half_the_frames(tiny: EncoderWeights, n_frames: int) -> None:
    from training.whisper.encoder import build_encoder

    encoder = build_encoder(tiny, n_blocks=4, final_norm=True)
    outs = encoder(_features(np.random.default_rng(0), 2, n_frames, 80))
    assert len(outs) == 5
    assert all(tuple(o.shape) == (2, (n_frames + 1) // 2, 32) for o in outs)
    assert all(np.isfinite(np.asarray(o)).all() for o in outs)


def test_blocks_are_shared_between_depths(tiny: EncoderWeights) -> None:
    from training.whisper.encoder import build_encoder

    x = _features(np.random.default_rng(1), 1, 100, 80)
    two = [np.asarray(o) for o in build_encoder(tiny, n_blocks=2)(x)]
    four = [np.asarray(o) for o in build_encoder(tiny, n_blocks=4)(x)]
    np.testing.assert_allclose(two[1], four[1], atol=1e-6)
    assert np.max(np.abs(four[1] - four[3])) > 0.1


def test_bad_depth_is_a_parameter_error(tiny: EncoderWeights) -> None:
    from training.whisper.encoder import build_encoder

    with pytest.raises(ParameterError, match="n_blocks"):
        build_encoder(tiny, n_blocks=5)
    with pytest.raises(ParameterError, match="final_norm"):
        build_encoder(tiny, n_blocks=2, final_norm=True)


def test_incomplete_weights_are_refused(tiny: EncoderWeights) -> None:
    tensors = dict(tiny.tensors)
    del tensors["blocks.1.mlp.0.bias"]
    with pytest.raises(ParameterError, match=r"blocks\.1\.mlp\.0\.bias"):
        EncoderWeights(n_mels=80, d_model=32, n_heads=2, n_blocks=4, n_ctx=1500, d_mlp=128, tensors=tensors)


def test_tiny_embedder_equals_keras(tiny: EncoderWeights, tiny_onnx: dict[str, Path]) -> None:
    from training.whisper.embedder import Embedder, build_embedder_model, check_embedder_parity

    x = _features(np.random.default_rng(2), 37, 298, 80)
    model = build_embedder_model(tiny, n_blocks=3)
    assert check_embedder_parity(model, tiny_onnx["float32"], x) < 1e-4
    f32 = Embedder(tiny_onnx["float32"])
    assert (f32.n_mels, f32.n_blocks, f32.d_model, f32.max_frames, f32.weights) == (80, 3, 32, 3000, "float32")
    got = f32(x)
    assert got.shape == (37, 3, 32)
    # batching (16 a run) gives what one window at a time gives
    np.testing.assert_allclose(got[20:21], f32(x[20:21]), atol=1e-6)
    int8 = Embedder(tiny_onnx["int8"])
    assert int8.weights == "int8"
    q = int8(x)
    assert tiny_onnx["int8"].stat().st_size < tiny_onnx["float32"].stat().st_size
    assert 0 < np.max(np.abs(q - got)) < 0.2 * np.max(np.abs(got))


def test_embedder_validates_its_input(tiny_onnx: dict[str, Path]) -> None:
    from training.whisper.embedder import Embedder

    emb = Embedder(tiny_onnx["float32"])
    with pytest.raises(ValueError, match=r"\(n, T, 80\)"):
        emb(np.zeros((2, 100, 64), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(n, T, 80\)"):
        emb(np.zeros((100, 80), dtype=np.float32))
    with pytest.raises(ValueError, match="3000"):
        emb(np.zeros((1, 3001, 80), dtype=np.float32))
    bad = np.zeros((1, 100, 80), dtype=np.float32)
    bad[0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        emb(bad)
    assert emb(np.zeros((0, 100, 80), dtype=np.float32)).shape == (0, 3, 32)


def test_other_onnx_is_not_an_embedder(tiny_model_dir: Path) -> None:
    from training.whisper.embedder import Embedder

    with pytest.raises(ParameterError, match="not a Whisper embedder"):
        Embedder(tiny_model_dir / "model.onnx")


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _write_ct2(path: Path, *, version: int = 6) -> dict[str, np.ndarray]:
    """Write a small model.bin in CTranslate2's layout: two variables and an alias."""
    arrays = {
        "encoder/a": np.arange(6, dtype=np.float16).reshape(2, 3),
        "encoder/n": np.array(8, dtype=np.int16),
    }
    ids = {np.dtype("float16"): 4, np.dtype("int16"): 2}
    out = struct.pack("<I", version) + _string("TinySpec") + struct.pack("<II", 1, len(arrays))
    for name, arr in arrays.items():
        out += _string(name) + struct.pack("<B", arr.ndim) + b"".join(struct.pack("<I", d) for d in arr.shape)
        out += struct.pack("<BI", ids[arr.dtype], arr.nbytes) + arr.tobytes()
    out += struct.pack("<I", 1) + _string("encoder/b") + _string("encoder/a")
    path.write_bytes(out)
    return arrays


def test_reader_reads_a_small_file(tmp_path: Path) -> None:
    arrays = _write_ct2(tmp_path / "model.bin")
    model = read_ct2_model(tmp_path / "model.bin")
    assert (model.spec, model.revision) == ("TinySpec", 1)
    v = model.variables
    assert v["encoder/a"].dtype == np.float32
    np.testing.assert_array_equal(v["encoder/a"], arrays["encoder/a"].astype(np.float32))
    assert v["encoder/b"] is v["encoder/a"]
    assert v["encoder/n"].shape == ()
    assert int(v["encoder/n"]) == 8


def test_reader_refuses_truncated_and_foreign_files(tmp_path: Path) -> None:
    good = tmp_path / "model.bin"
    _write_ct2(good)
    data = good.read_bytes()
    for cut in (3, 20, len(data) - 12, len(data) - 1):
        short = tmp_path / f"cut{cut}.bin"
        short.write_bytes(data[:cut])
        with pytest.raises(CT2FormatError, match="truncated") as info:
            read_ct2_model(short)
        assert str(short) in str(info.value)
    longer = tmp_path / "longer.bin"
    longer.write_bytes(data + b"\0")
    with pytest.raises(CT2FormatError, match="after the aliases"):
        read_ct2_model(longer)
    old = tmp_path / "v5.bin"
    _write_ct2(old, version=5)
    with pytest.raises(CT2FormatError, match="binary version 6"):
        read_ct2_model(old)
    text = tmp_path / "notes.txt"
    text.write_text("this is not a model\n" * 10)
    with pytest.raises(ValueError, match="not a CTranslate2"):
        read_ct2_model(text)
