"""The main window: Live and Files tabs, status bar, model loading and its error dialog."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from desktop_app.app_log import bug_message
from desktop_app.live_controller import LiveController, SessionFactory
from desktop_app.live_view import DeviceInfo, LiveView, list_devices, status_separator
from desktop_app.profiles import ProfileManager
from desktop_app.settings import AppSettings
from desktop_app.settings_dialog import SettingsDialog
from desktop_app.widgets import FitLabel
from ser_engine import version
from ser_engine.errors import ModelError
from ser_engine.inference.model import EmotionModel, default_model_dir
from ser_engine.logs import get_logger
from ser_engine.timing import fixed_window_s

__all__ = ["MainWindow", "icon_path", "load_model"]

log = get_logger("app")

MESSAGE_MS = 8000  # how long a status-bar message stays


def icon_path() -> Path:
    """Return the app's icon file."""
    return Path(__file__).resolve().parent / "resources" / "ser-app.png"


def load_model(model_dir: Path | None) -> tuple[EmotionModel | None, str | None]:
    """Load the model; on failure return ``(None, message naming the path and the problem)``."""
    where = model_dir if model_dir is not None else default_model_dir()
    try:
        return EmotionModel.load(where), None
    except ModelError as exc:
        return None, str(exc)
    except Exception as exc:  # a bug: the app opens anyway and says why; the traceback is in the log
        log.exception("loading the model from %s failed", where)
        return None, f"{where}: cannot load the model ({bug_message(exc)})"


class MainWindow(QMainWindow):
    """Top-level window.

    Parameters
    ----------
    settings : AppSettings
    model : EmotionModel or None
        None when it could not be loaded; ``model_error`` then says why, a
        dialog shows it once the window is up, and both modes are disabled.
    session_factory : optional
        Live session factory (default: the engine's microphone session).
    """

    def __init__(self, *, settings: AppSettings, model: EmotionModel | None, model_error: str | None = None,
                 session_factory: SessionFactory | None = None,
                 device_lister: object = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.model = model
        self.model_error = model_error
        self.model_dialog: QMessageBox | None = None
        self.setWindowTitle("ser — speech emotion recognition")
        self.setAcceptDrops(True)
        if icon_path().is_file():
            self.setWindowIcon(QIcon(str(icon_path())))
        from desktop_app.file_view import FileView

        controller = LiveController(model, factory=session_factory, parent=self) if model is not None else None
        lister = device_lister if callable(device_lister) else list_devices
        self.profiles = ProfileManager(settings=settings, model=model, parent=self) if model is not None else None
        self.live = LiveView(settings=settings, model=model, controller=controller,
                             device_lister=lister, profiles=self.profiles)
        self.files = FileView(settings=settings, model=model, profiles=self.profiles)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.live, "Live microphone")
        self.tabs.addTab(self.files, "Files")
        self.tabs.setStyleSheet("QTabBar::tab { font-size: 13pt; padding: 6px 18px; }")
        self.setCentralWidget(self.tabs)
        self.tabs.setCurrentIndex(min(max(0, settings.last_tab), 1))
        self.tabs.currentChanged.connect(self._tab_changed)

        sb = self.statusBar()
        # Messages go into a label of their own, left of the permanent fields, that takes all the
        # width they leave; a message that still does not fit is cut in the middle (its start and
        # its file name stay) and whole in the tooltip. QStatusBar.showMessage would clip it at the
        # first permanent field instead: the live figures alone can leave it a few letters.
        self.status_message = FitLabel(elide=Qt.TextElideMode.ElideMiddle)
        self.status_message.setObjectName("status_message")
        self.status_message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        sb.addWidget(self.status_message, 1)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.clear_status_message)
        self._live_status_yields = False  # the live figures make way for a message that needs their room
        self.status_message.elided.connect(self._message_elided)
        for w in self.live.status_widgets():
            sb.addPermanentWidget(w)
        self.model_label = QLabel(f"model: {model.name}" if model is not None else "model: none")
        self.profile_label = QLabel()
        self.profile_label.setToolTip("The voice profile live mode applies (Live tab, or Voice menu)")
        sb.addPermanentWidget(self.profile_label)
        sb.addPermanentWidget(status_separator())
        sb.addPermanentWidget(self.model_label)
        if self.profiles is not None:
            self.profiles.changed.connect(self._show_profile)
        self._show_profile()
        self._show_live_status()
        self.live.message.connect(self.show_status_message)
        self.files.message.connect(self.show_status_message)
        self._build_menu()
        geo = settings.window_geometry
        if geo:
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 860)
        if model is None:
            self.live.set_unavailable("No model", "the model could not be loaded (see the message)")
            QTimer.singleShot(0, self.show_model_error)

    def _build_menu(self) -> None:
        m = self.menuBar().addMenu("&File")
        a = QAction("Open files…", self)
        a.setShortcut(QKeySequence.StandardKey.Open)
        a.triggered.connect(self.files._choose_files)
        a.setEnabled(self.model is not None)
        m.addAction(a)
        a = QAction("Open folder…", self)
        a.triggered.connect(self.files._choose_folder)
        a.setEnabled(self.model is not None)
        m.addAction(a)
        m.addSeparator()
        a = QAction("Settings…", self)
        a.setShortcut(QKeySequence.StandardKey.Preferences)
        a.triggered.connect(self.open_settings)
        m.addAction(a)
        m.addSeparator()
        a = QAction("Quit", self)
        a.setShortcut(QKeySequence.StandardKey.Quit)
        a.triggered.connect(self.close)
        m.addAction(a)
        v = self.menuBar().addMenu("&Voice")
        self.calibrate_action = QAction("Calibrate to my voice…", self)
        self.calibrate_action.triggered.connect(self._calibrate)
        self.calibrate_action.setEnabled(self.profiles is not None)
        v.addAction(self.calibrate_action)
        self.manage_profiles_action = QAction("Manage voice profiles…", self)
        self.manage_profiles_action.triggered.connect(self._manage_profiles)
        self.manage_profiles_action.setEnabled(self.profiles is not None)
        v.addAction(self.manage_profiles_action)
        h = self.menuBar().addMenu("&Help")
        a = QAction("About", self)
        a.triggered.connect(self._about)
        h.addAction(a)
        self.settings_button_action = self.menuBar().addAction("Settings…")
        self.settings_button_action.triggered.connect(self.open_settings)

    def _calibrate(self) -> object:
        self.tabs.setCurrentWidget(self.live)
        return self.live.open_calibration()

    def _manage_profiles(self) -> object:
        return self.live.open_profiles()

    def _show_profile(self) -> None:
        """Status bar: which voice profile live mode uses."""
        name = self.live.active_profile_name()
        self.profile_label.setText(f"voice: {name}" if name else "voice: no calibration")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Files dropped anywhere on the window go to file mode."""
        if event.mimeData().hasUrls() and self.model is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Analyse files dropped anywhere on the window in file mode (Qt's event handler)."""
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths and self.model is not None:
            event.acceptProposedAction()
            self.tabs.setCurrentWidget(self.files)
            self.files.add_paths(paths)

    def _tab_changed(self, index: int) -> None:
        self.settings.last_tab = index
        self._show_live_status()

    def _show_live_status(self) -> None:
        """Show the live figures on the Live tab, unless a message needs their room."""
        visible = self.tabs.currentWidget() is self.live and not self._live_status_yields
        for w in self.live.status_widgets():
            w.setVisible(visible)

    @Slot(str)
    def show_status_message(self, message: str) -> None:
        """Show ``message`` in the status bar for :data:`MESSAGE_MS` (the full text is its tooltip)."""
        self.status_message.setText(message)
        self._message_timer.start(MESSAGE_MS)

    @Slot()
    def clear_status_message(self) -> None:
        """Remove the status-bar message; the live figures come back."""
        self._message_timer.stop()
        self.status_message.setText("")
        if self._live_status_yields:
            self._live_status_yields = False
            self._show_live_status()

    @Slot(bool)
    def _message_elided(self, cut: bool) -> None:
        # A message too long for the room beside the live figures: they hide until it goes
        # (as QStatusBar hides its normal widgets for a message), so it is read whole when it can be.
        if cut and self.status_message.full_text() and not self._live_status_yields:
            self._live_status_yields = True
            self._show_live_status()

    def show_model_error(self) -> QMessageBox:
        """Open a (window-modal, non-blocking) dialog naming the model path and the problem."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("Model not available")
        box.setText("The emotion model could not be loaded, so live and file analysis are disabled.")
        box.setInformativeText(self.model_error or "unknown problem")
        box.setDetailedText("Set SER_MODEL_DIR or pass --model-dir to a folder holding model.onnx and model.json,"
                            " or reinstall ser.")
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        self.model_dialog = box
        box.open()
        return box

    def open_settings(self) -> SettingsDialog:
        """Open the settings dialog (applied to a running session when accepted)."""
        fixed = None if self.model is None else fixed_window_s(self.model)
        dlg = SettingsDialog(self.settings, fixed_window_s=fixed, parent=self)
        def apply() -> None:
            if self.live.controller is not None:
                self.live.controller.update_settings(self.settings.stream_settings)
            self.apply_min_confidence()

        dlg.accepted.connect(apply)
        dlg.open()
        return dlg

    def apply_min_confidence(self) -> None:
        """Give the live view, the Files tab and the voice profiles the minimum confidence of the settings.

        From now on a top probability below it is shown as "uncertain"; files already analysed
        keep their results. The live view switches models as it does for a new voice profile.
        """
        if self.model is None or self.model.min_confidence == self.settings.min_confidence:
            return
        self.model = self.model.with_min_confidence(self.settings.min_confidence)
        self.files.model = self.model
        self.live.model = self.model
        if self.profiles is not None:
            self.profiles.set_min_confidence(self.settings.min_confidence)
        self.files.batch_chart.set_threshold(self.model.metadata.uncertainty_threshold)
        self.show_status_message(
            f"Minimum confidence {100 * self.model.metadata.uncertainty_threshold:.0f} %: "
            "applies to what is analysed from now on"
        )

    def _about(self) -> None:
        name = self.model.name if self.model is not None else "none"
        QMessageBox.about(self, "About ser", f"ser {version()}\nSpeech emotion recognition on the desktop.\n"
                                             f"Model: {name}")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the window's geometry and stop the live session and the batches (Qt's event handler)."""
        self.settings.window_geometry = bytes(self.saveGeometry().data())
        self.live.shutdown()
        self.files.shutdown()
        super().closeEvent(event)


__all__ += ["DeviceInfo"]
