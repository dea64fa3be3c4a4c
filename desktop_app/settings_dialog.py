"""Settings dialog: analysis window, hop, smoothing, speech-gate sensitivity, minimum confidence, recordings folder."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QStyle,
    QStyleOptionFrame,
    QVBoxLayout,
    QWidget,
)

from ser_engine.errors import ParameterError
from ser_engine.live.stream import StreamSettings
from ser_engine.timing import MAX_HOP_S, MAX_WINDOW_S, MIN_HOP_S, MIN_WINDOW_S

from .settings import AppSettings

__all__ = ["PathEdit", "SettingsDialog"]


class PathEdit(QLineEdit):
    """A line edit for a path: while it is not being edited, a path too long for it is elided in the middle.

    A middle-elided path ("~/Documents/…/ser-recordings") keeps both the start and the folder's own name in view;
    the full path is the tooltip, and it comes back whole as soon as the field has the
    focus (to be edited). :meth:`text` is always the full path.
    """

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setToolTip(text)
        self.textChanged.connect(self.setToolTip)

    def _text_rect(self) -> QRect:
        opt = QStyleOptionFrame()
        self.initStyleOption(opt)
        rect = self.style().subElementRect(QStyle.SubElement.SE_LineEditContents, opt, self)
        m = self.textMargins()
        # QLineEdit keeps 2 pixels on each side of the text inside its contents rectangle
        return rect.adjusted(m.left() + 2, m.top(), -(m.right() + 2), -m.bottom())

    def displayed_text(self) -> str:
        """Return the text as the field shows it now: the whole path, or elided in the middle."""
        text = self.text()
        if self.hasFocus():
            return text
        width = self._text_rect().width()
        if self.fontMetrics().horizontalAdvance(text) <= width:
            return text
        return self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, width)

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint as a line edit, with the elided path when the whole one does not fit (Qt's event handler)."""
        shown = self.displayed_text()
        if shown == self.text():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        opt = QStyleOptionFrame()
        self.initStyleOption(opt)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelLineEdit, opt, painter, self)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        painter.drawText(self._text_rect(), int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), shown)
        painter.end()


class SettingsDialog(QDialog):
    """Edits an :class:`AppSettings`; values are validated by :class:`StreamSettings` on OK."""

    def __init__(self, settings: AppSettings, *, fixed_window_s: float | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        s = settings.stream_settings
        form = QFormLayout(self)
        # the engine's limits, the same as `ser analyze/listen --window/--hop` and StreamSettings
        self.window_s = QDoubleSpinBox(suffix=" s", decimals=2, minimum=MIN_WINDOW_S, maximum=MAX_WINDOW_S,
                                       singleStep=0.5)
        self.window_s.setValue(s.window_s)
        if fixed_window_s is not None:
            self.window_s.setValue(fixed_window_s)
            self.window_s.setEnabled(False)
            self.window_s.setToolTip("this model only accepts this window length")
        form.addRow("Analysis window:", self.window_s)
        self.hop_s = QDoubleSpinBox(suffix=" s", decimals=2, minimum=MIN_HOP_S, maximum=MAX_HOP_S, singleStep=0.1)
        self.hop_s.setValue(s.hop_s)
        form.addRow("Hop (time between predictions):", self.hop_s)
        self.smoothing = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=0.95, singleStep=0.05)
        self.smoothing.setValue(s.smoothing)
        self.smoothing.setToolTip("0 = each window on its own; higher = steadier but slower to change")
        form.addRow("Smoothing:", self.smoothing)
        row = QHBoxLayout()
        self.gate = QSlider(Qt.Orientation.Horizontal)
        self.gate.setRange(0, 100)
        self.gate.setValue(round(s.gate_sensitivity * 100))
        self.gate_label = QLabel()
        self.gate.valueChanged.connect(lambda v: self.gate_label.setText(f"{v / 100:.2f}"))
        self.gate_label.setText(f"{s.gate_sensitivity:.2f}")
        row.addWidget(QLabel("strict"))
        row.addWidget(self.gate, 1)
        row.addWidget(QLabel("sensitive"))
        row.addWidget(self.gate_label)
        form.addRow("Speech-gate sensitivity:", row)
        form.addRow("Minimum confidence:", self._build_min_confidence())
        frow = QHBoxLayout()
        self.folder = PathEdit(settings.recordings_folder)
        self._fit_folder()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        frow.addWidget(self.folder, 1)
        frow.addWidget(browse)
        form.addRow("Recordings folder:", frow)
        self.error = QLabel()
        self.error.setStyleSheet("color:#D55E00;")
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self._defaults)
        form.addRow(buttons)

    def _build_min_confidence(self) -> QVBoxLayout:
        """Make the minimum confidence's controls: "the model's default" or a percentage, and what it gives.

        Below the percentage a line says what the chosen value gave on validation clips
        (coverage and accuracy), when the model measured it (``confidence_tradeoff``).
        """
        s = self.settings
        own = s.model_min_confidence
        default_text = "The model's default" + ("" if own is None else f" ({100 * own:.0f} %)")
        self.min_confidence_default = QCheckBox(default_text)
        self.min_confidence_default.setToolTip("Use the threshold the model was tuned with on validation speakers")
        self.min_confidence = QDoubleSpinBox(suffix=" %", decimals=0, minimum=0, maximum=99, singleStep=1)
        self.min_confidence.setToolTip("A prediction whose top probability is below this is shown as "
                                       "“uncertain (angry?)”. 0 %: never uncertain. Higher: fewer answers, "
                                       "more often right.")
        chosen = s.min_confidence
        self.min_confidence_default.setChecked(chosen is None)
        shown = chosen if chosen is not None else own
        self.min_confidence.setValue(100 * shown if shown is not None else 0)
        self.min_confidence.setEnabled(chosen is not None)
        self.tradeoff = QLabel()
        self.tradeoff.setWordWrap(True)
        tradeoff = s.confidence_tradeoff
        if tradeoff is not None:
            self.tradeoff.setToolTip(f"Measured on {tradeoff.measured_on}. A higher minimum confidence answers "
                                     "fewer clips, and more of those right.")
        self.tradeoff.setVisible(tradeoff is not None)
        self.min_confidence_default.toggled.connect(self._min_confidence_changed)
        self.min_confidence.valueChanged.connect(self._min_confidence_changed)
        # what the controls say now: OK writes the minimum confidence only when the user changed it,
        # so a stored value finer than the box's whole percent is never rounded behind their back
        self._min_confidence_shown = self._min_confidence_state()
        self._min_confidence_changed()
        line = QHBoxLayout()
        line.addWidget(self.min_confidence_default)
        line.addWidget(self.min_confidence)
        line.addStretch(1)
        box = QVBoxLayout()
        box.addLayout(line)
        box.addWidget(self.tradeoff)
        return box

    def _min_confidence_state(self) -> tuple[bool, float]:
        return self.min_confidence_default.isChecked(), self.min_confidence.value()

    def _min_confidence_changed(self) -> None:
        use_default = self.min_confidence_default.isChecked()
        self.min_confidence.setEnabled(not use_default)
        own = self.settings.model_min_confidence
        if use_default and own is not None:
            self.min_confidence.blockSignals(True)  # the box shows the default, greyed
            self.min_confidence.setValue(100 * own)
            self.min_confidence.blockSignals(False)
        tradeoff = self.settings.confidence_tradeoff
        if tradeoff is None:
            return
        value = own if use_default else self.min_confidence.value() / 100
        at = None if value is None else tradeoff.at(value)
        self.tradeoff.setText(f"On validation this {at.describe()}." if at is not None
                              else "Not measured on validation for this value.")

    def min_confidence_value(self) -> float | None:
        """Return the chosen minimum confidence as a fraction (None: the model's default)."""
        if self.min_confidence_default.isChecked():
            return None
        return self.min_confidence.value() / 100

    def _fit_folder(self) -> None:
        """Make the folder field wide enough for the whole path, up to 70 characters (longer: elided in the middle)."""
        fm = self.folder.fontMetrics()
        # the frame and the text margins of a line edit take about two characters
        need = fm.horizontalAdvance(self.folder.text()) + 2 * fm.averageCharWidth() + 8
        self.folder.setMinimumWidth(min(max(need, 30 * fm.averageCharWidth()), 70 * fm.averageCharWidth()))
        self.folder.setCursorPosition(0)  # once edited, the path's start is in view first

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Recordings folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _defaults(self) -> None:
        d = self.settings.defaults  # the model's window and hop
        if self.window_s.isEnabled():
            self.window_s.setValue(d.window_s)
        self.hop_s.setValue(d.hop_s)
        self.smoothing.setValue(d.smoothing)
        self.gate.setValue(round(d.gate_sensitivity * 100))
        self.min_confidence_default.setChecked(True)

    def values(self) -> StreamSettings:
        """Return the edited settings; raises ``ParameterError`` when they are inconsistent."""
        return StreamSettings(window_s=self.window_s.value(), hop_s=self.hop_s.value(),
                              smoothing=self.smoothing.value(), gate_sensitivity=self.gate.value() / 100)

    def accept(self) -> None:
        """Save the settings and close, or say why they cannot be used (Qt's API)."""
        try:
            values = self.values()
        except ParameterError as exc:
            self.error.setText(str(exc))
            return
        self.settings.set_stream_settings(values)
        if self._min_confidence_state() != self._min_confidence_shown:
            self.settings.min_confidence = self.min_confidence_value()
        if self.folder.text().strip():
            self.settings.recordings_folder = self.folder.text().strip()
        super().accept()
