"""The few test steps that need root, for root (CI) and for a user with sudo.

``scripts/setup.sh test`` asks a sudo user for the password once, up front, and keeps the
credentials fresh; these helpers then use ``sudo -n`` and never prompt. Without root or
sudo credentials they fail with a message that says how to get them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def as_root(argv: list[str], *, why: str) -> list[str]:
    """``argv`` to run as root: unchanged for root, else prefixed with ``sudo -n``.

    Fails the test (never skips) when neither is possible, naming ``why``.
    """
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo") is None or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        pytest.fail(f"{why} needs root or sudo credentials: run the suite through `bash scripts/setup.sh test`, "
                    "which asks for the sudo password once")
    return ["sudo", "-n", *argv]


@contextlib.contextmanager
def small_tmpfs(where: Path, *, size: str) -> Iterator[Path]:
    """Mount a real tmpfs of ``size`` (e.g. ``"200k"``) at ``where``, owned by the test's user.

    Unmounted (lazily if busy) when the block ends.
    """
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size},uid={os.getuid()},gid={os.getgid()},mode=0755"
    mount = as_root(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], why="mounting a small tmpfs")
    p = subprocess.run(mount, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {where}: {p.stderr.strip()}")
    try:
        yield where
    finally:
        umount = as_root(["umount", str(where)], why="unmounting the tmpfs")
        if subprocess.run(umount, capture_output=True, timeout=30).returncode != 0:
            subprocess.run(as_root(["umount", "-l", str(where)], why="unmounting the tmpfs"), capture_output=True,
                           timeout=30)
