from __future__ import annotations

import json

import numpy as np
import pytest

from ser_engine.config import FeatureConfig
from ser_engine.errors import ParameterError


def test_defaults_and_derived() -> None:
    c = FeatureConfig()
    assert c.window_samples == 48000
    assert c.hop_samples == 8000
    assert c.n_frames == 1 + (48000 - 512) // 160 == 297
    assert not c.is_fitted


def test_json_round_trip_keeps_stats() -> None:
    c = FeatureConfig().with_stats(mean=np.linspace(-8, -2, 64), std=np.linspace(1, 3, 64))
    back = FeatureConfig.from_json(c.to_json())
    assert back == c
    assert json.loads(c.to_json())["mean"][0] == pytest.approx(-8.0)


def test_frozen() -> None:
    c = FeatureConfig()
    with pytest.raises(AttributeError):
        c.n_mels = 40  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 0},
        {"sample_rate": 4000},
        {"n_mels": -1},
        {"win_length": 1024},
        {"fmax": 9000.0},
        {"fmin": 9000.0, "fmax": 8000.0},
        {"window_s": 0.01},
        {"hop_s": 5.0},
        {"log_offset": 0.0},
        {"mean": (0.0,) * 64},
        {"mean": (0.0,) * 10, "std": (1.0,) * 10},
        {"mean": (0.0,) * 64, "std": (0.0,) * 64},
        {"n_fft": True},
        {"window_s": float("nan")},
        {"features": "mfcc_cqt"},
        {"features": None},
        {"features": "mfcc", "n_mfcc": 65},
        {"features": "mfcc", "n_mfcc": 0},
        {"features": "mfcc_chroma_mel", "n_chroma": 0},
        {"features": "mfcc_zcr_rms", "n_mfcc": 20, "mean": (0.0,) * 20, "std": (1.0,) * 20},
    ],
)
def test_invalid_values_raise_parameter_error(kwargs: dict) -> None:
    with pytest.raises(ParameterError):
        FeatureConfig(**kwargs)


def test_unknown_key_rejected() -> None:
    data = FeatureConfig().to_dict()
    data["n_cqt"] = 84
    with pytest.raises(ParameterError, match="n_cqt"):
        FeatureConfig.from_dict(data)


def test_with_timing_validates() -> None:
    c = FeatureConfig().with_timing(window_s=2.0, hop_s=0.25)
    assert c.window_samples == 32000
    assert c.hop_samples == 4000
    with pytest.raises(ParameterError):
        FeatureConfig().with_timing(window_s=1.0, hop_s=2.0)


@pytest.mark.parametrize(
    ("kwargs", "width"),
    [
        ({}, 64),
        ({"features": "logmel", "n_mels": 40}, 40),
        ({"features": "mfcc"}, 40),
        ({"features": "mfcc", "n_mfcc": 13}, 13),
        ({"features": "mfcc_zcr_rms"}, 42),
        ({"features": "mfcc_zcr_rms", "n_mfcc": 20, "n_mels": 128}, 22),
        ({"features": "mfcc_chroma_mel"}, 40 + 12 + 64),
        ({"features": "mfcc_chroma_mel", "n_mfcc": 20, "n_mels": 128, "n_chroma": 24}, 20 + 24 + 128),
    ],
)
def test_feature_sets_width_stats_and_json_round_trip(kwargs: dict, width: int) -> None:
    c = FeatureConfig(**kwargs)
    assert c.n_features == width
    fitted = c.with_stats(mean=np.arange(width) * 0.5, std=np.full(width, 2.0))
    back = FeatureConfig.from_json(fitted.to_json())
    assert back == fitted
    assert back.features == c.features
    assert back.n_features == width
    with pytest.raises(ParameterError, match="n_features"):
        c.with_stats(mean=np.zeros(width + 1), std=np.ones(width + 1))


def test_old_config_without_feature_keys_is_logmel_and_saves_unchanged() -> None:
    """A model.json written before feature sets existed loads as log-mel and is written back byte for byte."""
    old = {
        "sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 64, "fmin": 50.0,
        "fmax": 8000.0, "log_offset": 1e-06, "window_s": 3.0, "hop_s": 0.5, "mean": [-6.0] * 64, "std": [3.0] * 64,
    }
    c = FeatureConfig.from_dict(old)
    assert c.features == "logmel"
    assert c.n_features == 64
    assert c.to_dict() == old
    assert list(c.to_dict()) == list(old)
    assert "features" in FeatureConfig(features="mfcc").to_dict()
