"""``ser-app``: start the desktop app (or ``--version``, ``--self-test``, or a ``ser`` sub-command).

The app logs like the CLI (:func:`ser_engine.cli.common.start_logging`): warnings on
stderr (debug messages too with ``--verbose``) and a log file in the XDG state folder,
which holds the traceback of any bug; a log file that cannot be written is said once
and the app goes on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser_engine.cli.commands import SUBCOMMANDS, is_subcommand

if TYPE_CHECKING:
    from desktop_app.settings import AppSettings
    from ser_engine.inference.model import EmotionModel

__all__ = ["app_model", "main", "run_app", "single_threaded_blas"]


def _epilog() -> str:
    lines = ["ser commands (ser-app COMMAND ... runs `ser COMMAND ...`; `ser-app COMMAND --help` for its options):"]
    lines += [f"  {name:<10} {text}" for name, text in SUBCOMMANDS.items()]
    lines += ["", "Without a command, ser-app opens the window (with PATHS in the Files tab)."]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ser-app", description="Live speech emotion recognition: desktop app.",
                                usage="ser-app [-h] [--version] [--self-test] [--verbose] [--model-dir DIR] "
                                      "[--settings-file FILE] [PATHS ...]\n"
                                      f"       ser-app {{{','.join(SUBCOMMANDS)}}} ...",
                                epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("--self-test", action="store_true",
                   help="open the window offscreen, run the live path and file mode, exit 0 or print what failed")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also show debug messages (on stderr and in the log file, $XDG_STATE_HOME/ser/ser.log)")
    p.add_argument("--model-dir", type=Path, default=None, metavar="DIR",
                   help="folder with model.onnx and model.json")
    p.add_argument("--settings-file", type=Path, default=None, metavar="FILE",
                   help="INI file for preferences (default: the user's ser-app settings)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATHS", help="audio files or folders to open in file mode")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ser-app``: the window, ``--version``, ``--self-test``, or a ``ser`` sub-command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    from ser_engine.privacy import disable_telemetry

    disable_telemetry()  # before anything imports onnxruntime (also for the CLI passthrough)
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and is_subcommand(args_list[0]):  # the bundle's one executable also answers the CLI
        from ser_engine.cli.main import main as cli_main

        return int(cli_main(args_list))
    args = _parser().parse_args(args_list)
    if args.version:
        from ser_engine import version

        print(f"ser-app {version()}")
        return 0
    from desktop_app import qt_messages
    from ser_engine.cli.common import start_logging

    start_logging(verbose=args.verbose)
    qt_messages.install()  # drops the offscreen platform's size-hints noise, passes every other message
    if args.self_test:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from desktop_app.self_test import run_self_test

        return run_self_test(model_dir=args.model_dir)
    return run_app(model_dir=args.model_dir, settings_file=args.settings_file, paths=args.paths)


def run_app(*, model_dir: Path | None, settings_file: Path | None, paths: Sequence[Path]) -> int:
    """Open the main window (with ``paths`` in the Files tab) and run Qt's event loop.

    Exceptions escaping a Qt slot or a thread are logged with their traceback
    (:func:`desktop_app.app_log.install_excepthooks`); the window stays open.

    Parameters
    ----------
    model_dir : Path or None
        The model's folder (None: the bundled model).
    settings_file : Path or None
        An INI file for the preferences (None: the user's).
    paths : sequence of Path
        Files and folders to analyse at once.

    Returns
    -------
    int
        The exit status (128 + the signal when SIGINT/SIGTERM closed the window).
    """
    t0 = time.perf_counter()
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_app.app_log import install_excepthooks
    from desktop_app.main_window import MainWindow
    from desktop_app.settings import APPLICATION, ORGANISATION, AppSettings, default_settings
    from desktop_app.theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName("ser-app")
    install_excepthooks()
    apply_theme(app)
    store = QSettings(str(settings_file), QSettings.Format.IniFormat) if settings_file else default_settings()
    settings = AppSettings(store)
    model, error = app_model(model_dir, settings)
    single_threaded_blas()
    window = MainWindow(settings=settings, model=model, model_error=error)
    window.show()
    if paths and model is not None:
        window.tabs.setCurrentWidget(window.files)
        window.files.add_paths(list(paths))
    report = os.environ.get("SER_APP_REPORT_READY")  # benchmarks: launch-to-ready time
    if report:
        def ready() -> None:
            print(f"ready {time.perf_counter() - t0:.3f}", flush=True)
            if report == "quit":
                window.close()
                app.quit()

        QTimer.singleShot(0, ready)
    stopped_by = _stop_on_signals(window)
    code = int(app.exec())
    return 128 + stopped_by[0] if stopped_by else code


def single_threaded_blas() -> None:
    """Limit NumPy's BLAS (and any OpenMP pool) to one thread for the rest of the process.

    The live worker and file analysis each limit it while they run (threadpoolctl), but
    those limits are the process's and each puts back what it found when it ends: a file
    batch that started before listening and ended during it would give the live worker
    a second BLAS thread again, which spins after every small matrix product. Nothing in
    the app gains from a second BLAS thread, so the app sets one for good, once NumPy is
    loaded (threadpoolctl sees only the libraries loaded so far).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def app_model(model_dir: Path | None, settings: AppSettings) -> tuple[EmotionModel | None, str | None]:
    """Load the model the window works with: the user's minimum confidence (Settings) applied.

    Parameters
    ----------
    model_dir : Path or None
        The model's folder (None: the bundled model).
    settings : AppSettings
        Holds ``min_confidence`` (None: the model's own threshold).

    Returns
    -------
    tuple
        ``(model, None)``, or ``(None, message naming the path and the problem)`` when it
        cannot be loaded (:func:`desktop_app.main_window.load_model`).
    """
    from desktop_app.main_window import load_model

    model, error = load_model(model_dir)
    if model is not None:  # every analysis, live or of files, then marks "uncertain" by the user's value
        model = model.with_min_confidence(settings.min_confidence)
    return model, error


def _stop_on_signals(window: Any) -> list[int]:
    """Make Ctrl-C (SIGINT) and SIGTERM close the window as the close button does.

    Settings are saved and a recording closed properly, instead of the signal being
    ignored while Qt's event loop runs. A 200 ms timer lets the interpreter run its
    signal handlers. Returns a list that holds the signal number once one arrived
    (the exit code is then 128 + it).
    """
    import signal

    from PySide6.QtCore import QTimer

    got: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        del frame  # a signal handler's signature
        if not got:
            got.append(signum)
            QTimer.singleShot(0, window.close)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    tick = QTimer(window)
    tick.start(200)
    tick.timeout.connect(lambda: None)
    return got


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
