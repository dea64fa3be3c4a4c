"""One colour per emotion, used everywhere in the app (Okabe-Ito, colour-blind friendly).

The eight Okabe-Ito colours stay distinguishable under the common colour-vision
deficiencies; neutral takes a mid grey and silence a dark grey so that "no
speech" never looks like an emotion.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

__all__ = ["SILENCE_COLOR", "UNCERTAIN_COLOR", "emotion_color", "emotion_qcolor", "label_text"]

_COLORS: dict[str, str] = {
    "angry": "#D55E00",  # vermillion
    "calm": "#56B4E9",  # sky blue
    "disgust": "#009E73",  # bluish green
    "fearful": "#CC79A7",  # reddish purple
    "happy": "#F0E442",  # yellow
    "neutral": "#A6A6A6",  # mid grey
    "sad": "#0072B2",  # blue
    "surprised": "#E69F00",  # orange
}
SILENCE_COLOR = "#3C3C3C"
UNCERTAIN_COLOR = "#C8C8C8"  # light grey, shown in italics: "the model is not sure", never an emotion
_FALLBACK = "#FFFFFF"


def emotion_color(label: str | None) -> str:
    """Hex colour of an emotion label (``None`` is silence)."""
    if label is None:
        return SILENCE_COLOR
    return _COLORS.get(label, _FALLBACK)


def emotion_qcolor(label: str | None, alpha: int = 255) -> QColor:
    c = QColor(emotion_color(label))
    c.setAlpha(alpha)
    return c


def label_text(label: str | None) -> str:
    """Display text of a label ("Surprised", "—" for silence)."""
    return "—" if label is None else label.capitalize()
