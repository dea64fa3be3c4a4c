"""Keras builders: shapes, the dynamic time axis, in-graph window normalisation, ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.training]


@pytest.mark.parametrize("arch", ["cnn2d", "cnn1d", "cnn_bilstm"])
def test_logits_shape_with_any_window_length(arch: str) -> None:
    from training.models import build_model

    model = build_model(arch, n_features=64, n_labels=7)
    for frames in (100, 297):
        out = np.asarray(model(np.zeros((2, frames, 64), dtype=np.float32), training=False))
        assert out.shape == (2, 7)


def test_unknown_architecture_is_refused() -> None:
    from training.models import build_model

    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        build_model("resnet", n_features=64, n_labels=7)


def test_window_cmn_ignores_a_constant_spectral_tilt_and_exports(tmp_path: Path) -> None:
    from training.export import check_parity, export_onnx
    from training.models import build_cnn2d

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 297, 64)).astype(np.float32)
    tilt = np.linspace(-2.0, 2.0, 64, dtype=np.float32)  # a different microphone / voice colour
    cmn = build_cnn2d(n_features=64, n_labels=7, filters=(8, 8, 8, 8), window_cmn=True, seed=1)
    plain = build_cnn2d(n_features=64, n_labels=7, filters=(8, 8, 8, 8), window_cmn=False, seed=1)
    np.testing.assert_allclose(np.asarray(cmn(x + tilt, training=False)), np.asarray(cmn(x, training=False)), atol=1e-4)
    assert not np.allclose(np.asarray(plain(x + tilt, training=False)), np.asarray(plain(x, training=False)), atol=1e-3)
    onnx_path = export_onnx(cmn, tmp_path / "m.onnx", n_features=64)
    assert check_parity(cmn, onnx_path, x) < 1e-4
