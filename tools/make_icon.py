"""Draw the app icon (desktop_app/resources/ser-app.png, 256x256) with Qt: a voice waveform in the emotion colours.

Run: QT_QPA_PLATFORM=offscreen python tools/make_icon.py
"""

from __future__ import annotations

import math
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPainterPath

from desktop_app.palette import emotion_color
from ser_engine.inference.model import KNOWN_LABELS

OUT = Path(__file__).resolve().parent.parent / "desktop_app" / "resources" / "ser-app.png"


def main() -> None:
    """Draw the icon and write it to ``OUT``."""
    _app = QGuiApplication([])
    size = 256
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    bg = QPainterPath()
    bg.addRoundedRect(QRectF(8, 8, size - 16, size - 16), 44, 44)
    p.fillPath(bg, QColor("#1e1e1e"))
    n = 15
    bar_w = 11.0
    gap = (size - 56 - n * bar_w) / (n - 1)
    for i in range(n):
        h = 40 + 140 * abs(math.sin(0.55 * i + 0.4)) * (0.45 + 0.55 * math.sin(math.pi * (i + 0.5) / n))
        x = 28 + i * (bar_w + gap)
        colour = QColor(emotion_color(KNOWN_LABELS[i % len(KNOWN_LABELS)]))
        path = QPainterPath()
        path.addRoundedRect(QRectF(x, size / 2 - h / 2, bar_w, h), bar_w / 2, bar_w / 2)
        p.fillPath(path, colour)
    p.end()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.save(str(OUT))
    print(OUT)


if __name__ == "__main__":
    main()
