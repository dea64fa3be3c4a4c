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
    ],
)
def test_invalid_values_raise_parameter_error(kwargs: dict) -> None:
    with pytest.raises(ParameterError):
        FeatureConfig(**kwargs)


def test_unknown_key_rejected() -> None:
    data = FeatureConfig().to_dict()
    data["n_mfcc"] = 40
    with pytest.raises(ParameterError, match="n_mfcc"):
        FeatureConfig.from_dict(data)


def test_with_timing_validates() -> None:
    c = FeatureConfig().with_timing(window_s=2.0, hop_s=0.25)
    assert c.window_samples == 32000 and c.hop_samples == 4000
    with pytest.raises(ParameterError):
        FeatureConfig().with_timing(window_s=1.0, hop_s=2.0)
