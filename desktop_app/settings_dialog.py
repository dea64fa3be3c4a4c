"""Settings dialog: analysis window, hop, smoothing, speech-gate sensitivity, recordings folder."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
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
    QWidget,
)

from ser_engine.errors import ParameterError
from ser_engine.live.stream import StreamSettings
from ser_engine.timing import MAX_HOP_S, MAX_WINDOW_S, MIN_HOP_S, MIN_WINDOW_S

from .settings import AppSettings

__all__ = ["SettingsDialog"]


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
        frow = QHBoxLayout()
        self.folder = QLineEdit(settings.recordings_folder)
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
        if self.folder.text().strip():
            self.settings.recordings_folder = self.folder.text().strip()
        super().accept()
