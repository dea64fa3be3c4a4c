"""Qt's own log messages: one known-harmless message of the offscreen platform is dropped, all others pass.

Qt's "offscreen" platform plugin (``ser-app --self-test``, CI, benchmarks) prints
"This plugin does not support propagateSizeHints()" whenever a top-level
window's size hints change; the message says nothing about the app and
would teach users to ignore warnings. :func:`install` is called by the app's
start-up (:func:`desktop_app.main.main`), never on import.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QMessageLogContext, QtMsgType, qFormatLogMessage, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication

__all__ = ["OFFSCREEN_NOISE", "install", "is_offscreen_noise"]

OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints()"

Handler = Callable[[QtMsgType, QMessageLogContext, str], Any]


def is_offscreen_noise(message: str, *, platform: str) -> bool:
    """Whether ``message`` is the offscreen plugin's harmless size-hints note (on that platform only)."""
    return platform == "offscreen" and message.strip() == OFFSCREEN_NOISE


def install() -> Handler | None:
    """Install the filter as Qt's message handler; returns the handler it replaced (None: Qt's default).

    Every message but :data:`OFFSCREEN_NOISE` on the offscreen platform goes to the previous
    handler, or is written to stderr as Qt's default handler writes it.
    """
    previous: Handler | None = None

    def handler(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
        if is_offscreen_noise(message, platform=QGuiApplication.platformName()):
            return
        if previous is not None:
            previous(mode, context, message)
            return
        sys.stderr.write(qFormatLogMessage(mode, context, message) + "\n")
        sys.stderr.flush()

    previous = qInstallMessageHandler(handler)
    return previous
