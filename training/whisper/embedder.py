"""ONNX "embedder": the time-averaged outputs of the first blocks of Whisper's encoder.

The graph takes ``features`` (batch, T, n_mels) float32, normalised Whisper log-mel (see
:mod:`training.whisper.encoder`), and gives ``block_means`` (batch, n_blocks, d_model), the mean
over time of each block's output. Exported with tf2onnx, then (optionally) weight-quantized to
int8 by ONNX Runtime's dynamic quantization. :class:`Embedder` runs such a file, one thread.

``python -m training.whisper.embedder CLIP [CLIP ...]`` writes the float32 and int8 embedders of
Whisper-base's blocks 1-4 into ``~/.cache/ser/whisper/`` and checks them on the clips' windows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError
from training.export import PARITY_TOLERANCE, ExportError
from training.whisper.fused import FUSED_GRAPH
from training.whisper.weights import EncoderWeights

__all__ = [
    "BATCH_SIZE",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "Embedder",
    "build_embedder_model",
    "check_embedder_parity",
    "export_embedder",
    "quantize_embedder",
    "whisper_feature_config",
    "window_features",
]

INPUT_NAME = "features"
OUTPUT_NAME = "block_means"
BATCH_SIZE = 16
_META_KEY = "ser.whisper_embedder"

FloatArray = npt.NDArray[np.float32]


def whisper_feature_config() -> Any:
    """Return the project's featurizer configuration for Whisper's normalised log-mel (3 s window: 298 frames).

    Returns
    -------
    ser_engine.config.FeatureConfig
        ``(ln(mel) + 4 ln 10) / (4 ln 10) = (log10(mel) + 4) / 4``, Whisper's features before its clamp.
    """
    from ser_engine.config import FeatureConfig

    ln10 = math.log(10.0)
    return FeatureConfig(
        n_fft=400,
        win_length=400,
        n_mels=80,
        fmin=0.0,
        fmax=8000.0,
        log_offset=1e-10,
        mean=(-4.0 * ln10,) * 80,
        std=(4.0 * ln10,) * 80,
    )


def window_features(*, y: npt.ArrayLike, featurizer: Any) -> FloatArray:
    """Normalised features of a clip's speech windows, cut as ``ser analyze`` cuts them.

    Parameters
    ----------
    y : array_like, shape (n,)
        Mono signal at the featurizer's sample rate.
    featurizer : ser_engine.dsp.features.Featurizer
        Configured by :func:`whisper_feature_config`.

    Returns
    -------
    ndarray, shape (n_speech_windows, n_frames, n_mels), float32
        The windows of :func:`ser_engine.dsp.core.iter_window_features` the speech gate
        passes, normalised.
    """
    from training.features import speech_window_features

    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1 or x.shape[0] == 0:
        raise ParameterError(f"expected a non-empty 1-D signal, got shape {x.shape}")
    frames, _ = speech_window_features([x], config=featurizer.config, featurizer=featurizer)
    out: FloatArray = featurizer.normalize(frames)
    return out


def build_embedder_model(weights: EncoderWeights, *, n_blocks: int) -> Any:
    """Keras model ``features`` (batch, T, n_mels) -> ``block_means`` (batch, n_blocks, d_model).

    Parameters
    ----------
    weights : EncoderWeights
    n_blocks : int
        Blocks of the encoder, ``1 <= n_blocks <= weights.n_blocks``.

    Returns
    -------
    keras.Model
    """
    import keras

    from training.whisper.encoder import build_encoder

    encoder = build_encoder(weights, n_blocks=n_blocks)
    outs = encoder.outputs
    means = [keras.layers.GlobalAveragePooling1D(name=f"mean{i + 1}")(o) for i, o in enumerate(outs)]
    stacked = keras.layers.Lambda(lambda ms: keras.ops.stack(ms, axis=1), name=OUTPUT_NAME)(means)
    return keras.Model(encoder.inputs[0], stacked, name=f"whisper_embedder_b{n_blocks}")


def _rename_output(graph: Any, new: str) -> None:
    """Rename the single graph output to ``new`` (tf2onnx names it after the TF tensor)."""
    if len(graph.output) != 1:
        raise ExportError(f"expected one graph output, got {[o.name for o in graph.output]}")
    old = graph.output[0].name
    if old == new:
        return
    for node in graph.node:
        for seq in (node.output, node.input):
            for i, name in enumerate(seq):
                if name == old:
                    seq[i] = new
    graph.output[0].name = new


def _set_metadata(model_proto: Any, info: dict[str, Any]) -> None:
    """Store ``info`` as JSON in the ONNX model's metadata (replacing an earlier entry)."""
    props = model_proto.metadata_props
    for i in reversed(range(len(props))):
        if props[i].key == _META_KEY:
            del props[i]
    entry = props.add()
    entry.key, entry.value = _META_KEY, json.dumps(info, sort_keys=True)


def export_embedder(
    weights: EncoderWeights,
    *,
    n_blocks: int,
    path: str | Path,
    quantize_int8: bool = True,
    opset: int = 17,
) -> Path:
    """Export the embedder of the first ``n_blocks`` blocks to ONNX.

    Parameters
    ----------
    weights : EncoderWeights
    n_blocks : int
        ``1 <= n_blocks <= weights.n_blocks``.
    path : path-like
        The ``.onnx`` file to write.
    quantize_int8 : bool
        Write the graph with int8 weights (dynamic quantization of the MatMul weights;
        :func:`quantize_embedder`) instead of the float32 one.
    opset : int
        ONNX opset.

    Returns
    -------
    Path
        ``path``: input ``features`` (batch, T, n_mels) float32, output ``block_means``
        (batch, n_blocks, d_model) float32, batch and T dynamic.

    Raises
    ------
    ParameterError
        For a bad ``n_blocks``.
    ExportError
        When the converted graph is not the expected one.
    """
    import onnx
    import tensorflow as tf
    import tf2onnx

    model = build_embedder_model(weights, n_blocks=n_blocks)
    spec = (tf.TensorSpec([None, None, weights.n_mels], tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)  # type: ignore[untyped-decorator]
    def serve(features: Any) -> Any:
        return {OUTPUT_NAME: tf.identity(model(features, training=False), name=OUTPUT_NAME)}

    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=opset, output_path=None)
    _rename_output(model_proto.graph, OUTPUT_NAME)
    if model_proto.graph.input[0].name != INPUT_NAME:
        raise ExportError(f"graph input is named {model_proto.graph.input[0].name!r}, expected {INPUT_NAME!r}")
    info = {
        "n_mels": weights.n_mels,
        "n_blocks": n_blocks,
        "d_model": weights.d_model,
        "n_heads": weights.n_heads,
        "max_frames": 2 * weights.n_ctx,
        "weights": "float32",
    }
    _set_metadata(model_proto, info)
    onnx.checker.check_model(model_proto)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not quantize_int8:
        onnx.save(model_proto, str(out))
        return out
    with tempfile.TemporaryDirectory() as tmp:
        f32 = Path(tmp) / "embedder-f32.onnx"
        onnx.save(model_proto, str(f32))
        return quantize_embedder(source=f32, path=out)


def quantize_embedder(*, source: str | Path, path: str | Path, n_heads: int | None = None) -> Path:
    """Write the int8 embedder of a float32 one: its graph in fused operators, int8 MatMul weights.

    The float32 graph is written again in the operators ONNX Runtime fuses and checked against
    the source before its weights are quantized (:func:`training.whisper.fused.fuse_embedder`);
    activations are quantized on the fly, per batch.

    Parameters
    ----------
    source : path-like
        A float32 embedder (:func:`export_embedder` with ``quantize_int8=False``).
    path : path-like
        The int8 ``.onnx`` to write.
    n_heads : int, optional
        Attention heads (default: the source's metadata).

    Returns
    -------
    Path
        ``path``.
    """
    import onnx

    from training.whisper.fused import fuse_embedder

    src = Path(source)
    info = _read_metadata(onnx.load(str(src)), src)
    heads = n_heads if n_heads is not None else info.get("n_heads")
    if not isinstance(heads, int):
        raise ParameterError(f"{src}: the number of attention heads is not recorded; pass n_heads")
    out = fuse_embedder(source=src, path=path, n_heads=heads)
    proto = onnx.load(str(out))
    _set_metadata(proto, {**info, "weights": "int8", "graph": FUSED_GRAPH})
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return out


def _read_metadata(proto: Any, path: Path) -> dict[str, Any]:
    for prop in proto.metadata_props:
        if prop.key == _META_KEY:
            info: dict[str, Any] = json.loads(prop.value)
            return info
    raise ParameterError(f"{path}: not a Whisper embedder (no {_META_KEY} metadata)")


class Embedder:
    """Run an exported embedder with ONNX Runtime.

    Parameters
    ----------
    path : path-like
        An ``.onnx`` written by :func:`export_embedder`.
    threads : int
        Intra-op threads of the session (1: one core per embedder).
    batch_size : int
        Windows per ``run`` call.

    Attributes
    ----------
    n_mels, n_blocks, d_model, max_frames : int
        From the file's metadata.
    weights : str
        ``"float32"`` or ``"int8"``.
    """

    def __init__(self, path: str | Path, *, threads: int = 1, batch_size: int = BATCH_SIZE) -> None:
        import onnxruntime as ort

        if threads < 1 or batch_size < 1:
            raise ParameterError(f"threads and batch_size must be >= 1, got {threads} and {batch_size}")
        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        if _META_KEY not in meta:
            raise ParameterError(f"{self.path}: not a Whisper embedder (no {_META_KEY} metadata)")
        info = json.loads(meta[_META_KEY])
        self.n_mels = int(info["n_mels"])
        self.n_blocks = int(info["n_blocks"])
        self.d_model = int(info["d_model"])
        self.max_frames = int(info["max_frames"])
        self.weights = str(info["weights"])
        self.batch_size = batch_size

    def __call__(self, features: npt.ArrayLike) -> FloatArray:
        """Block means of windows.

        Parameters
        ----------
        features : array_like, shape (n, T, n_mels)
            Normalised Whisper log-mel of ``n`` windows of ``T`` frames
            (``1 <= T <= max_frames``).

        Returns
        -------
        ndarray, shape (n, n_blocks, d_model), float32

        Raises
        ------
        ValueError
            (:class:`~ser_engine.errors.ParameterError`) for a wrong shape or non-finite values.
        """
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != self.n_mels:
            raise ParameterError(f"features must have shape (n, T, {self.n_mels}), got {x.shape}")
        if not 1 <= x.shape[1] <= self.max_frames:
            raise ParameterError(f"windows must have 1..{self.max_frames} frames, got {x.shape[1]}")
        if not np.isfinite(x).all():
            raise ParameterError("features contain NaN or infinite values")
        out = np.empty((x.shape[0], self.n_blocks, self.d_model), dtype=np.float32)
        for i in range(0, x.shape[0], self.batch_size):
            out[i : i + self.batch_size] = self._session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + self.batch_size]})[0]
        return out


def check_embedder_parity(
    model: Any, onnx_path: str | Path, features: npt.ArrayLike, *, tol: float = PARITY_TOLERANCE
) -> float:
    """Max abs difference of ``block_means``, ONNX Runtime vs Keras, on ``features`` (n, T, n_mels).

    Also runs the first window cut to an odd length, to prove the time axis dynamic.

    Parameters
    ----------
    model : keras.Model
        :func:`build_embedder_model` of the same weights and blocks.
    onnx_path : path-like
    features : array_like, shape (n, T, n_mels)
    tol : float

    Returns
    -------
    float
        The larger of the two max abs differences.

    Raises
    ------
    ExportError
        When a difference reaches ``tol``.
    """
    x = np.asarray(features, dtype=np.float32)
    emb = Embedder(onnx_path)
    diff = float(np.max(np.abs(emb(x) - np.asarray(model(x, training=False)))))
    odd = x[:1, : max(1, x.shape[1] // 2) | 1]
    d2 = float(np.max(np.abs(emb(odd) - np.asarray(model(odd, training=False)))))
    worst = max(diff, d2)
    if not worst < tol:
        raise ExportError(
            f"ONNX/Keras embedder parity failed: max abs difference {diff:.2e} ({x.shape[1]} frames), "
            f"{d2:.2e} ({odd.shape[1]} frames), tolerance {tol:.0e}"
        )
    return worst


@dataclass(frozen=True)
class _Made:
    float32: Path
    int8: Path
    parity: float
    int8_change: float
    n_windows: int


def make_whisper_embedders(*, clips: list[Path], n_blocks: int = 4, cache_dir: str | Path | None = None) -> _Made:
    """Write and check the float32 and int8 embedders of Whisper-base in the cache.

    Parameters
    ----------
    clips : list of Path
        Audio files whose windows check the parity (float32 vs Keras) and measure the int8 change.
    n_blocks : int
    cache_dir : path-like, optional
        The cache root (``~/.cache/ser`` by default).
    """
    from ser_engine.dsp.audio import load_audio
    from ser_engine.dsp.features import Featurizer
    from training.whisper.weights import load_encoder_weights, whisper_cache_dir

    weights = load_encoder_weights()
    folder = whisper_cache_dir(cache_dir=cache_dir)
    f32 = export_embedder(
        weights, n_blocks=n_blocks, path=folder / f"embedder-b{n_blocks}-f32.onnx", quantize_int8=False
    )
    int8 = quantize_embedder(source=f32, path=folder / f"embedder-b{n_blocks}-int8-{FUSED_GRAPH}.onnx",
                             n_heads=weights.n_heads)
    cfg = whisper_feature_config()
    featurizer = Featurizer(cfg)
    feats = np.concatenate(
        [window_features(y=load_audio(c, sample_rate=cfg.sample_rate).samples, featurizer=featurizer) for c in clips]
    )
    model = build_embedder_model(weights, n_blocks=n_blocks)
    parity = check_embedder_parity(model, f32, feats)
    change = float(np.max(np.abs(Embedder(int8)(feats) - Embedder(f32)(feats))))
    return _Made(float32=f32, int8=int8, parity=parity, int8_change=change, n_windows=int(feats.shape[0]))


def main(argv: list[str] | None = None) -> int:
    """Command line: write the Whisper-base embedders into the cache and print the checks."""
    parser = argparse.ArgumentParser(prog="python -m training.whisper.embedder", description=__doc__)
    parser.add_argument("clips", nargs="+", type=Path, help="audio files for the parity check")
    parser.add_argument("--n-blocks", type=int, default=4)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    made = make_whisper_embedders(clips=args.clips, n_blocks=args.n_blocks, cache_dir=args.cache_dir)
    print(f"float32 {made.float32} ({made.float32.stat().st_size / 1e6:.1f} MB)")
    print(f"int8    {made.int8} ({made.int8.stat().st_size / 1e6:.1f} MB)")
    print(f"{made.n_windows} windows: ONNX float32 vs Keras max abs {made.parity:.2e}")
    print(f"int8 vs float32 max abs change {made.int8_change:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
