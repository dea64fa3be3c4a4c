""""Manage voice profiles": list, use, rename and delete the saved profiles."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.profiles import ProfileEntry, ProfileManager
from ser_engine.errors import ProfileError, SerError

__all__ = ["ProfilesDialog"]

COLUMNS = ("Name", "Status", "Speech (s)", "Created", "File")


class ProfilesDialog(QDialog):
    """The saved profiles with their state; Use, Rename…, Delete… (confirmed), Calibrate new….

    Signals
    -------
    calibrate_requested()
        The user asked for a new profile (the owner opens the calibration dialog).
    """

    calibrate_requested = Signal()

    def __init__(self, profiles: ProfileManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.profiles = profiles
        self.setWindowTitle("Voice profiles")
        self.resize(960, 400)
        root = QVBoxLayout(self)
        where = QLabel(f"Profiles are stored in <code>{profiles.store_dir}</code>, one JSON file each.")
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where.setWordWrap(True)
        root.addWidget(where)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        hdr = self.table.horizontalHeader()
        hdr.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for col in (1, 2, 3):
            hdr.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _i: self.use_selected())
        root.addWidget(self.table, 1)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet("color:#E69F00;")
        root.addWidget(self.detail)
        row = QHBoxLayout()
        self.new_button = QPushButton("Calibrate new…")
        self.new_button.clicked.connect(self.calibrate_requested.emit)
        self.use_button = QPushButton("Use")
        self.use_button.clicked.connect(self.use_selected)
        self.none_button = QPushButton("Use no calibration")
        self.none_button.clicked.connect(lambda: self.profiles.set_active(None))
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self._ask_rename)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self._ask_delete)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        for b in (self.new_button, self.use_button, self.none_button, self.rename_button, self.delete_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        root.addLayout(row)
        profiles.changed.connect(self.reload)
        self.reload()

    # ------------------------------------------------------------------ table
    @Slot()
    def reload(self) -> None:
        """Fill the table from the profile folder again, keeping the selection."""
        keep = self.selected_entry()
        active = self.profiles.settings.voice_profile
        self.table.setRowCount(0)
        for e in self.profiles.entries:
            r = self.table.rowCount()
            self.table.insertRow(r)
            p = e.profile
            name = e.name + ("  (active)" if str(e.path) == active else "")
            created = p.created[:16].replace("T", " ") + " UTC" if p else ""
            cells = [name, e.status_text, f"{p.speech_s:.1f}" if p else "", created, e.path.name]
            for c, text in enumerate(cells):
                it = QTableWidgetItem(text)
                it.setData(Qt.ItemDataRole.UserRole, str(e.path))
                if not e.usable:
                    it.setForeground(QColor("#E69F00") if c == 1 else QColor("#8a8a8a"))
                    it.setToolTip(e.error or "")
                self.table.setItem(r, c, it)
        if keep is not None:
            self.select(keep.path)
        self._update_buttons()

    def select(self, path: Path) -> None:
        """Select the row of the profile file ``path``."""
        for r, e in enumerate(self.profiles.entries):
            if e.path == Path(path):
                self.table.selectRow(r)
                return

    def selected_entry(self) -> ProfileEntry | None:
        """Return the selected profile (None: no row selected)."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        r = rows[0].row()
        return self.profiles.entries[r] if 0 <= r < len(self.profiles.entries) else None

    def _update_buttons(self) -> None:
        e = self.selected_entry()
        self.use_button.setEnabled(e is not None and e.usable)
        self.rename_button.setEnabled(e is not None and e.profile is not None)
        self.delete_button.setEnabled(e is not None)
        self.none_button.setEnabled(bool(self.profiles.settings.voice_profile))
        self.detail.setText("" if e is None or e.usable else (e.error or ""))

    # ------------------------------------------------------------------ actions
    @Slot()
    def use_selected(self) -> None:
        """Make the selected profile the active one (a problem is shown under the table)."""
        e = self.selected_entry()
        if e is None:
            return
        try:
            self.profiles.set_active(e.path)
        except ProfileError as exc:
            self.detail.setText(str(exc))

    def rename_selected(self, new_name: str) -> Path | None:
        """Rename the selected profile; a problem is shown under the table."""
        e = self.selected_entry()
        if e is None:
            return None
        try:
            path = self.profiles.rename(e.path, new_name)
        except (OSError, SerError) as exc:
            self.detail.setText(f"Cannot rename {e.path.name}: {exc}")
            return None
        self.select(path)
        return path

    def delete_selected(self, *, confirm: bool = True) -> bool:
        """Delete the selected profile, after asking when ``confirm``; True when deleted."""
        e = self.selected_entry()
        if e is None:
            return False
        if confirm:
            answer = QMessageBox.question(
                self, "Delete voice profile",
                f"Delete the voice profile “{e.name}”?\nThe file {e.path} is removed; this cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            self.profiles.delete(e.path)
        except (OSError, SerError) as exc:
            self.detail.setText(f"Cannot delete {e.path.name}: {exc}")
            return False
        return True

    def _ask_rename(self) -> None:
        e = self.selected_entry()
        if e is None:
            return
        text, ok = QInputDialog.getText(self, "Rename voice profile", "New name:", text=e.name)
        if ok and text.strip():
            self.rename_selected(text)

    def _ask_delete(self) -> None:
        self.delete_selected(confirm=True)
