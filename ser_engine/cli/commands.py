"""The ``ser`` sub-commands: the one list that ``ser --help``, ``ser-app --help`` and the bundle's entry use.

Importing this module is cheap (no NumPy, no model): launchers import it to
decide whether an argument names a ``ser`` sub-command.
"""

from __future__ import annotations

__all__ = ["SUBCOMMANDS", "is_subcommand"]

SUBCOMMANDS: dict[str, str] = {
    "analyze": "dominant emotion of audio files and folders (recursive)",
    "listen": "live predictions from an input device, one line per hop",
    "calibrate": "make a voice profile from recordings of one person's neutral speech",
    "devices": "list audio input devices",
    "info": "show the model's metadata",
}
"""Sub-command name -> its one-line help, in the order ``ser --help`` lists them."""


def is_subcommand(name: str) -> bool:
    """Whether ``name`` is a ``ser`` sub-command.

    Parameters
    ----------
    name : str
        A command-line argument.

    Returns
    -------
    bool
    """
    return name in SUBCOMMANDS
