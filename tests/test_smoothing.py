from __future__ import annotations

import numpy as np
import pytest

from ser_engine.dsp.smoothing import EmaSmoother
from ser_engine.errors import ParameterError


def test_ema_follows_definition() -> None:
    s = EmaSmoother(alpha=0.25)
    a = np.array([1.0, 0.0])
    b = np.array([0.0, 1.0])
    assert np.allclose(s.update(a), a)
    assert np.allclose(s.update(b), 0.25 * b + 0.75 * a)
    out = s.update(b)
    assert np.allclose(out, 0.25 * b + 0.75 * (0.25 * b + 0.75 * a))
    assert out.dtype == np.float32
    assert out.sum() == pytest.approx(1.0)


def test_alpha_one_is_identity_and_reset_forgets() -> None:
    s = EmaSmoother(alpha=1.0)
    s.update([0.2, 0.8])
    assert np.allclose(s.update([0.9, 0.1]), [0.9, 0.1])
    s2 = EmaSmoother(alpha=0.1)
    s2.update([1.0, 0.0])
    s2.reset()
    assert s2.state is None
    assert np.allclose(s2.update([0.0, 1.0]), [0.0, 1.0])


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.01, float("nan"), True])
def test_alpha_validated(alpha: float) -> None:
    with pytest.raises(ParameterError):
        EmaSmoother(alpha=alpha)


def test_bad_vectors() -> None:
    s = EmaSmoother(alpha=0.5)
    with pytest.raises(ParameterError):
        s.update([[0.5, 0.5]])
    with pytest.raises(ParameterError):
        s.update([np.nan, 1.0])
