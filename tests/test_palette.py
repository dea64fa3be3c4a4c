"""The emotion palette: distinguishable under simulated colour-vision deficiencies, readable on the dark theme.

Simulation: Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of
color vision deficiency", matrices at severity 1.0, applied to linear RGB (sRGB decoded, clipped
after). Distance: CIEDE2000 in CIELAB (D65). Contrast: WCAG 2 relative luminance ratio.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from desktop_app.palette import DARK_BACKGROUNDS, SILENCE_COLOR, emotion_color

MACHADO_2009 = {  # severity 1.0, linear RGB
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
MIN_DELTA_E = 15.0  # CIEDE2000, every pair, every vision: the palette measures 16.5, Okabe-Ito 7.4
MIN_CONTRAST = 3.0  # WCAG 2, non-text graphics and large text
OLD_OKABE_ITO = {"angry": "#D55E00", "disgust": "#009E73", "fearful": "#CC79A7", "happy": "#F0E442",
                 "neutral": "#A6A6A6", "sad": "#0072B2", "surprised": "#E69F00"}


def _srgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255.0


def _to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def simulate(rgb: np.ndarray, vision: str) -> np.ndarray:
    """Return an sRGB colour (3,) in 0..1 as seen with ``vision`` ("normal" or a key of MACHADO_2009)."""
    if vision == "normal":
        return rgb
    return _to_srgb(MACHADO_2009[vision] @ _to_linear(rgb))


def lab(rgb: np.ndarray) -> np.ndarray:
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = m @ _to_linear(rgb) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """CIEDE2000 (Sharma, Wu & Dalal 2005), kL = kC = kH = 1."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    cb = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(cb ** 7 / (cb ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = l2 - l1, c2p - c1p
    dh = 0.0 if c1p * c2p == 0 else (h2p - h1p + 180) % 360 - 180
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lbp, cbp = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbp = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbp = (h1p + h2p) / 2
    else:
        hbp = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * np.cos(np.radians(hbp - 30)) + 0.24 * np.cos(np.radians(2 * hbp))
         + 0.32 * np.cos(np.radians(3 * hbp + 6)) - 0.20 * np.cos(np.radians(4 * hbp - 63)))
    dtheta = 30 * np.exp(-(((hbp - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cbp ** 7 / (cbp ** 7 + 25 ** 7))
    sl = 1 + 0.015 * (lbp - 50) ** 2 / np.sqrt(20 + (lbp - 50) ** 2)
    sc, sh = 1 + 0.045 * cbp, 1 + 0.015 * cbp * t
    rt = -np.sin(np.radians(2 * dtheta)) * rc
    return float(np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh)))


def contrast_ratio(a: str, b: str) -> float:
    def lum(h: str) -> float:
        return float(np.array([0.2126, 0.7152, 0.0722]) @ _to_linear(_srgb(h)))

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def closest_pair(colours: dict[str, str], vision: str) -> tuple[float, str, str]:
    labs = {k: lab(simulate(_srgb(v), vision)) for k, v in colours.items()}
    names = sorted(labs)
    return min((ciede2000(labs[a], labs[b]), a, b) for i, a in enumerate(names) for b in names[i + 1:])


VISIONS = ("normal", *MACHADO_2009)


@pytest.fixture(scope="module")
def shipped_labels() -> tuple[str, ...]:
    meta = json.loads((Path(__file__).resolve().parents[1] / "models" / "model.json").read_text())
    labels = tuple(meta["labels"])
    assert len(labels) == 7
    return labels


def test_ciede2000_matches_the_published_test_data() -> None:
    # Sharma, Wu & Dalal (2005), table 1, pairs 1, 7 and 17
    assert ciede2000(np.array([50, 2.6772, -79.7751]), np.array([50, 0, -82.7485])) == pytest.approx(2.0425, abs=1e-4)
    assert ciede2000(np.array([50, 0, 0]), np.array([50, -1, 2])) == pytest.approx(2.3669, abs=1e-4)
    assert ciede2000(np.array([50, 2.5, 0]), np.array([73, 25, -18])) == pytest.approx(27.1492, abs=1e-4)


def test_simulation_keeps_greys_and_confuses_red_green() -> None:
    grey = _srgb("#808080")
    for vision in MACHADO_2009:
        assert np.allclose(simulate(grey, vision), grey, atol=2e-3)  # the matrices keep achromatic colours
    red, green = lab(_srgb("#FF0000")), lab(_srgb("#00B000"))
    seen = {v: ciede2000(lab(simulate(_srgb("#FF0000"), v)), lab(simulate(_srgb("#00B000"), v))) for v in VISIONS}
    assert ciede2000(red, green) == pytest.approx(seen["normal"])
    assert seen["deuteranopia"] < seen["normal"] / 2
    assert seen["protanopia"] < seen["normal"] / 2


@pytest.mark.parametrize("vision", VISIONS)
def test_emotions_stay_distinguishable(vision: str, shipped_labels: tuple[str, ...]) -> None:
    colours = {lab_: emotion_color(lab_) for lab_ in shipped_labels}
    d, a, b = closest_pair(colours, vision)
    assert d >= MIN_DELTA_E, f"{vision}: {a} and {b} are only {d:.1f} CIEDE2000 apart"
    # the bound is meaningful: the earlier palette fails it for this deficiency or another
    assert min(closest_pair(OLD_OKABE_ITO, v)[0] for v in VISIONS) < MIN_DELTA_E


def test_emotions_read_on_the_dark_backgrounds(shipped_labels: tuple[str, ...]) -> None:
    for bg in DARK_BACKGROUNDS:
        for label in shipped_labels:
            ratio = contrast_ratio(emotion_color(label), bg)
            assert ratio >= MIN_CONTRAST, f"{label} {emotion_color(label)} on {bg}: {ratio:.2f}:1"
    assert contrast_ratio(OLD_OKABE_ITO["sad"], "#2D2D2D") < MIN_CONTRAST  # the complaint: dark blue on dark grey
    # silence is deliberately dim: it must not read like an emotion
    assert contrast_ratio(SILENCE_COLOR, "#2D2D2D") < MIN_CONTRAST


def test_angry_and_surprised_no_longer_look_alike(shipped_labels: tuple[str, ...]) -> None:
    assert {"angry", "surprised"} <= set(shipped_labels)  # both are the model's
    for vision in VISIONS:
        a = lab(simulate(_srgb(emotion_color("angry")), vision))
        s = lab(simulate(_srgb(emotion_color("surprised")), vision))
        old = ciede2000(lab(simulate(_srgb(OLD_OKABE_ITO["angry"]), vision)),
                        lab(simulate(_srgb(OLD_OKABE_ITO["surprised"]), vision)))
        assert ciede2000(a, s) > max(MIN_DELTA_E, old)
