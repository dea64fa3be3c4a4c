"""The embedder written again in fused operators: same network, the operators ONNX Runtime fuses, int8."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ser_engine.errors import ParameterError
from training.export import ExportError
from training.whisper.weights import EncoderWeights, tiny_encoder_weights

pytestmark = [pytest.mark.training]


@pytest.fixture(scope="module")
def tiny() -> EncoderWeights:
    return tiny_encoder_weights(seed=5)


@pytest.fixture(scope="module")
def tiny_f32(tiny: EncoderWeights, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.whisper.embedder import export_embedder

    return export_embedder(tiny, n_blocks=3, path=tmp_path_factory.mktemp("fused") / "f32.onnx", quantize_int8=False)


def _run(path: Path | bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path if isinstance(path, bytes) else str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {"features": x})[0])


def _meta(proto: object) -> dict[str, object]:
    entry = next(p for p in proto.metadata_props if p.key == "ser.whisper_embedder")  # type: ignore[attr-defined]
    info: dict[str, object] = json.loads(entry.value)
    return info


def _features(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(-0.5, 0.4, size=shape).astype(np.float32)


@pytest.mark.parametrize("n_frames", [3, 297, 298, 1000])
def test_fused_float_graph_equals_the_tf2onnx_one(tiny: EncoderWeights, tiny_f32: Path, n_frames: int) -> None:
    import onnx

    from training.whisper.fused import build_fused

    fused = build_fused(onnx.load(str(tiny_f32)), n_heads=tiny.n_heads)
    x = _features(n_frames, 3, n_frames, 80)
    want = _run(tiny_f32, x)
    got = _run(fused.SerializeToString(), x)
    assert got.shape == want.shape == (3, 3, tiny.d_model)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # each window its own: a window's output does not depend on the others in the batch
    np.testing.assert_allclose(_run(fused.SerializeToString(), x[1:2]), got[1:2], atol=1e-5)


def test_int8_embedder_runs_fused_operators(tiny: EncoderWeights, tiny_f32: Path, tmp_path: Path) -> None:
    import onnx

    from training.whisper.embedder import Embedder, quantize_embedder

    path = quantize_embedder(source=tiny_f32, path=tmp_path / "int8.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"LayerNormalization", "MultiHeadAttention", "Gelu"} <= ops
    assert not ops & {"ConvInteger", "Conv", "Erf", "Tensordot"}  # the patterns ONNX Runtime ran slowly
    emb = Embedder(path)
    assert (emb.weights, emb.n_blocks, emb.d_model) == ("int8", 3, tiny.d_model)
    assert _meta(onnx.load(str(path)))["graph"] == "fused-v1"
    x = _features(7, 5, 298, 80)
    ref = _run(tiny_f32, x)
    q = emb(x)
    assert 0 < np.max(np.abs(q - ref)) < 0.2 * np.max(np.abs(ref))


def test_a_renamed_layer_is_an_export_error(tiny_f32: Path) -> None:
    import onnx

    from training.whisper.fused import build_fused

    proto = onnx.load(str(tiny_f32))
    node = next(n for n in proto.graph.node if n.name.endswith("block2_1/attn_1/value_1/Tensordot/MatMul"))
    node.name = node.name.replace("value_1", "v_1")
    with pytest.raises(ExportError, match=r"block2_1/attn_1/value_1/Tensordot/MatMul"):
        build_fused(proto, n_heads=2)


def test_heads_must_divide_the_width(tiny_f32: Path) -> None:
    import onnx

    from training.whisper.fused import build_fused

    with pytest.raises(ExportError, match="multiple of 5 heads"):
        build_fused(onnx.load(str(tiny_f32)), n_heads=5)


def test_heads_are_read_from_the_metadata_or_asked_for(tiny_f32: Path, tmp_path: Path) -> None:
    import onnx

    from training.whisper.embedder import quantize_embedder

    proto = onnx.load(str(tiny_f32))
    info = _meta(proto)
    del info["n_heads"]
    next(p for p in proto.metadata_props if p.key == "ser.whisper_embedder").value = json.dumps(info)
    old = tmp_path / "old-f32.onnx"
    onnx.save(proto, str(old))
    with pytest.raises(ParameterError, match="attention heads"):
        quantize_embedder(source=old, path=tmp_path / "int8.onnx")
    assert quantize_embedder(source=old, path=tmp_path / "int8.onnx", n_heads=2).is_file()
