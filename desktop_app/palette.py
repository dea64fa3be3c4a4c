"""One colour per emotion, used everywhere in the app, chosen for the dark theme and colour-blind viewers.

The seven emotions of the shipped model stay distinguishable for the common colour-vision
deficiencies: simulated with the Machado, Oliveira & Fernandes (2009) matrices at severity 1.0
(protanopia, deuteranopia, tritanopia) applied in linear RGB, every pair stays at least 15
CIEDE2000 apart (normal vision too), and every colour has a WCAG contrast of at least 3:1
against the theme's backgrounds (#1E1E1E plots, #2D2D2D window). tests/test_palette.py checks
this. Neutral is a mid grey and silence a dark grey, so "no speech" never looks like an emotion.
The earlier Okabe-Ito set failed both: vermillion/orange for angry/surprised, and a dark blue
for sad (2.7:1 on #2D2D2D; fearful and neutral 7 apart under deuteranopia).
"""

from __future__ import annotations

from PySide6.QtGui import QColor

__all__ = ["DARK_BACKGROUNDS", "SILENCE_COLOR", "UNCERTAIN_COLOR", "emotion_color", "emotion_qcolor", "label_text"]

_COLORS: dict[str, str] = {
    "angry": "#FF5221",  # red-orange
    "calm": "#56B4E9",  # sky blue (not in the shipped model)
    "disgust": "#35B87A",  # green
    "fearful": "#AB66D9",  # purple
    "happy": "#F1E543",  # yellow
    "neutral": "#7F7F7F",  # mid grey
    "sad": "#43F8E0",  # turquoise
    "surprised": "#E79FFF",  # light orchid
}
SILENCE_COLOR = "#3C3C3C"
UNCERTAIN_COLOR = "#C8C8C8"  # light grey, shown in italics: "the model is not sure", never an emotion
_FALLBACK = "#FFFFFF"
DARK_BACKGROUNDS = ("#1E1E1E", "#2D2D2D")  # plot and window backgrounds of the dark theme


def emotion_color(label: str | None) -> str:
    """Hex colour of an emotion label (``None`` is silence)."""
    if label is None:
        return SILENCE_COLOR
    return _COLORS.get(label, _FALLBACK)


def emotion_qcolor(label: str | None, alpha: int = 255) -> QColor:
    """Return an emotion's colour as a QColor with opacity ``alpha`` (0-255)."""
    c = QColor(emotion_color(label))
    c.setAlpha(alpha)
    return c


def label_text(label: str | None) -> str:
    """Display text of a label ("Surprised", "—" for silence)."""
    return "—" if label is None else label.capitalize()
