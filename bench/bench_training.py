"""Training-side benchmarks.

Featurization throughput (clean and augmented, cache bypassed), Keras training
throughput of the shipped architecture, and ONNX Runtime latency of the shipped
model (float32 re-export vs shipped graph).

Run: ``python bench/bench_training.py [--clips 300]``; prints JSON and writes
``bench/results/training.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    """Run the training benchmarks; return the exit status."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ser")
    args = ap.parse_args()

    from ser_engine.config import FeatureConfig
    from training.corpora import load_all
    from training.features import featurize_clips
    from training.splits import assign, load_split

    clips, _ = load_all(root=args.data)
    train = assign(clips=clips, split=load_split())["train"]
    rng = np.random.default_rng(0)
    sample = [train[i] for i in sorted(rng.permutation(len(train))[: args.clips])]
    audio_s = sum(__import__("soundfile").info(c.path).duration for c in sample)
    out: dict = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_1min_at_start": os.getloadavg()[0],
    }
    cfg = FeatureConfig()
    for variant in (0, 1):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            ws = featurize_clips(
                clips=sample, config=cfg, variant=variant, seed=7, cache_dir=tmp, workers=2, progress=False
            )
            dt = time.perf_counter() - t
            t = time.perf_counter()
            featurize_clips(clips=sample, config=cfg, variant=variant, seed=7, cache_dir=tmp, workers=2, progress=False)
            cached = time.perf_counter() - t
        out["augmented" if variant else "clean"] = {
            "clips": len(sample),
            "audio_s": round(audio_s, 1),
            "windows": len(ws),
            "wall_s": round(dt, 2),
            "clips_per_s": round(len(sample) / dt, 1),
            "cached_reload_s": round(cached, 3),
        }

    from training.train import configure_tensorflow

    configure_tensorflow()
    import keras
    import tensorflow as tf

    from training.models import build_model

    meta = json.loads((ROOT / "models" / "model.json").read_text())
    params = meta["provenance"]["train_config"]["arch_params"]
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    model = build_model("cnn2d", n_features=64, n_labels=7, **params)
    opt = keras.optimizers.Adam(1e-3)

    @tf.function
    def step(x, y):  # type: ignore[no-untyped-def]
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=model(x, training=True))
            )
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    x = tf.constant(rng.standard_normal((64, cfg.n_frames, 64)).astype(np.float32))
    y = tf.constant(rng.integers(0, 7, 64).astype(np.int32))
    for _ in range(3):
        step(x, y)
    t = time.perf_counter()
    n = 20
    for _ in range(n):
        step(x, y)
    ms = (time.perf_counter() - t) / (n * 64) * 1000
    out["keras_train"] = {
        "arch_params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "ms_per_window": round(ms, 3),
        "threads": "2 intra / 1 inter",
    }

    from training.export import export_onnx
    from training.pipeline import _onnx_latency_ms

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "m.onnx", n_features=64)
        out["onnx_latency_ms_1thread"] = {
            "float32_same_architecture": round(_onnx_latency_ms(fp32, cfg.n_frames, 64), 3),
            "shipped_graph": round(_onnx_latency_ms(ROOT / "models" / "model.onnx", cfg.n_frames, 64), 3),
        }
    out["shipped_size_bytes"] = (ROOT / "models" / "model.onnx").stat().st_size
    out["load_average_1min_at_end"] = os.getloadavg()[0]
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "training.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
