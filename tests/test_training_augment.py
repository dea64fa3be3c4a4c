"""Each augmentation keeps shape, length bounds and finiteness, and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synth_speechlike

from ser_engine.errors import ParameterError
from training.augment import (
    AddNoise,
    BandLimit,
    Gain,
    PitchShift,
    Reverb,
    SpeedChange,
    TimeShift,
    TimeStretch,
    default_chain,
)

SR = 16000
# (transform, min length ratio, max length ratio)
CASES = [
    (AddNoise(), 1.0, 1.0),
    (Gain(), 1.0, 1.0),
    (TimeShift(), 1.0, 1.0),
    (SpeedChange(), 1 / 1.1 - 0.01, 1 / 0.9 + 0.01),
    (PitchShift(), 1.0, 1.0),
    (TimeStretch(), 1 / 1.15 - 0.02, 1 / 0.85 + 0.02),
    (Reverb(), 1.0, 1.0),
    (BandLimit(), 1.0, 1.0),
    (default_chain(), 1 / 1.15 - 0.02, 1 / 0.85 + 0.02),
]


@pytest.mark.parametrize(
    ("transform", "lo", "hi"), CASES, ids=lambda v: type(v).__name__ if not isinstance(v, float) else ""
)
def test_shape_length_finiteness_and_determinism(transform, lo: float, hi: float) -> None:
    y = synth_speechlike(seconds=2.0, seed=3)
    before = y.copy()
    for seed in range(3):
        out = transform(y, sample_rate=SR, rng=np.random.default_rng(seed))
        assert out.dtype == np.float32
        assert out.ndim == 1
        assert lo * y.size <= out.size <= hi * y.size
        assert np.isfinite(out).all()
        again = transform(y, sample_rate=SR, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(out, again)
    np.testing.assert_array_equal(y, before)  # input untouched


def test_noise_hits_the_requested_snr_and_fills_silence() -> None:
    y = np.zeros(SR, dtype=np.float32)
    y[SR // 4 : 3 * SR // 4] = synth_speechlike(seconds=0.5, seed=1)
    out = AddNoise(snr_db=(20.0, 20.0))(y, sample_rate=SR, rng=np.random.default_rng(0))
    noise = out - y
    assert np.all(out[: SR // 8] != 0)  # live audio is never digital zero
    loud = np.sort(np.mean(y[: (SR // 320) * 320].reshape(-1, 320) ** 2, axis=1))[25:].mean()
    snr = 10 * np.log10(loud / np.mean(noise**2))
    assert 19.0 < snr < 21.0


def test_gain_and_shift_do_what_they_say() -> None:
    y = synth_speechlike(seconds=1.0, seed=2, level=0.2)
    g = Gain(gain_db=(-6.0, -6.0))(y, sample_rate=SR, rng=np.random.default_rng(0))
    np.testing.assert_allclose(g, y * 10 ** (-6 / 20), rtol=1e-5)
    loud = Gain(gain_db=(40.0, 40.0))(y, sample_rate=SR, rng=np.random.default_rng(0))
    assert np.max(np.abs(loud)) <= 0.99 + 1e-6
    s = TimeShift(max_shift_s=0.1)(y, sample_rate=SR, rng=np.random.default_rng(5))
    k = int(np.argmax(np.correlate(s[:4000], y[:4000], mode="full"))) - 3999
    assert abs(k) <= 1600
    assert s.size == y.size


def test_bandlimit_removes_low_frequencies() -> None:
    t = np.arange(SR) / SR
    y = (0.5 * np.sin(2 * np.pi * 30 * t)).astype(np.float32)
    out = BandLimit(low_hz=(300.0, 300.0), high_hz=(4000.0, 4000.0))(y, sample_rate=SR, rng=np.random.default_rng(0))
    assert np.sqrt(np.mean(out[SR // 2 :] ** 2)) < 0.01


def test_empty_or_2d_input_is_refused() -> None:
    with pytest.raises(ParameterError, match="empty"):
        Gain()(np.zeros(0, np.float32), sample_rate=SR, rng=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="1-D"):
        Gain()(np.zeros((2, 10), np.float32), sample_rate=SR, rng=np.random.default_rng(0))
