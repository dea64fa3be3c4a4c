"""The app's look: a dark Fusion theme (the emotion colours are chosen to read on dark backgrounds).

Its own module so that the app (:mod:`desktop_app.main`), the self-test and the
benchmarks apply the same theme without importing each other.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["apply_theme"]


def apply_theme(app: QApplication) -> None:
    """Give ``app`` the dark Fusion palette, an 11 pt minimum font and pyqtgraph's matching colours."""
    app.setStyle("Fusion")
    pal = QPalette()
    base, text = QColor(32, 32, 32), QColor(230, 230, 230)
    pal.setColor(QPalette.ColorRole.Window, QColor(45, 45, 45))
    pal.setColor(QPalette.ColorRole.WindowText, text)
    pal.setColor(QPalette.ColorRole.Base, base)
    pal.setColor(QPalette.ColorRole.AlternateBase, QColor(50, 50, 50))
    pal.setColor(QPalette.ColorRole.Text, text)
    pal.setColor(QPalette.ColorRole.Button, QColor(60, 60, 60))
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorRole.Highlight, QColor(0, 114, 178))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor(60, 60, 60))
    pal.setColor(QPalette.ColorRole.ToolTipText, text)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    app.setPalette(pal)
    f = app.font()
    f.setPointSize(max(f.pointSize(), 11))
    app.setFont(f)
    pg.setConfigOptions(antialias=True, background="#1e1e1e", foreground="#d8d8d8")
