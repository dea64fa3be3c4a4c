"""Entry point of the stand-alone bundle (PyInstaller) and of the Debian package.

One executable, ``ser-app``, serves both the desktop app and the command line:

* ``ser-app`` / ``ser-app --self-test`` / ``ser-app --version`` ... -> the desktop app
  (``desktop_app.main.main``);
* ``ser-app COMMAND ...`` with a ``ser`` sub-command (:data:`ser_engine.cli.commands.SUBCOMMANDS`)
  -> the ``ser`` command line (``ser_engine.cli.main.main``);
* ``ser-app ser ARGS`` -> ``ser ARGS`` (used by the ``/usr/bin/ser`` launcher).
"""

from __future__ import annotations

import multiprocessing
import sys

from ser_engine.cli.commands import SUBCOMMANDS

CLI_COMMANDS = frozenset(SUBCOMMANDS)


def main() -> int:
    """Run the app, or the command line when the first argument names a ``ser`` sub-command.

    Returns
    -------
    int
        The exit status.
    """
    # First thing: ONNX Runtime's telemetry must be off before onnxruntime is imported by
    # any of the branches below (app, `ser-app analyze ...`, `ser-app ser ...`).
    from ser_engine.privacy import disable_telemetry

    disable_telemetry()
    argv = sys.argv[1:]
    if argv and argv[0] == "ser":
        from ser_engine.cli.main import main as cli_main

        return cli_main(argv[1:])
    if argv and argv[0] in CLI_COMMANDS:
        from ser_engine.cli.main import main as cli_main

        return cli_main(argv)
    from desktop_app.main import main as app_main

    return int(app_main() or 0)


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
