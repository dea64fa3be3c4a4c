"""Waiting for the event a test stands on, not for a fixed time.

A fixed ``sleep`` stands for something ("the stream is open", "the file has been synced",
"the played audio has been heard") and fails when the machine is slower than the sleep
assumed. These helpers wait for that something itself. Their timeouts only turn a hang into
a failure with a message; they are generous and never part of what a test asserts.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, TypeVar

import pytest

GUARD_S = 60.0
"""How long a wait may take before the test fails (a guard against hangs, not a timing)."""

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, what: str, timeout: float = GUARD_S, poll_s: float = 0.02) -> T:
    """Call ``check`` until it returns a true value, and return that value.

    ``what`` names the awaited event in the failure message. For what a thread or another
    process does that has no signal of its own (a file's contents, a counter).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what}")
        time.sleep(poll_s)


class ProcessOutput:
    """A running program's stdout and stderr, read line by line as it prints them.

    Two reader threads collect the lines (so neither pipe fills up and blocks the program);
    :meth:`wait_for_line` waits for a line that says the awaited event happened, and
    :meth:`finish` waits for the end and returns everything, as ``communicate`` would.

    Parameters
    ----------
    proc : subprocess.Popen
        Started with ``stdout=PIPE, stderr=PIPE`` in text mode.
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._open = 0
        self._threads = []
        for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            if stream is not None:
                self._open += 1
                thread = threading.Thread(target=self._read, args=(name, stream), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _read(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines[name].append(line)
                self._changed.notify_all()
        with self._changed:
            self._open -= 1
            self._changed.notify_all()

    def text(self, name: str) -> str:
        """Return what the program has printed on ``name`` (``"stdout"`` or ``"stderr"``) so far."""
        with self._changed:
            return "".join(self.lines[name])

    def wait_for_line(self, name: str, matches: Callable[[str], bool], *, what: str,
                      timeout: float = GUARD_S) -> str:
        """Return the first line printed on ``name`` for which ``matches`` is true.

        Fails, with what the program printed, when its output ends or ``timeout`` passes without
        one (the program, if still running, is killed).
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[name]:
                    if matches(line):
                        return line
                remaining = deadline - time.monotonic()
                if self._open == 0 or remaining <= 0:
                    ended = "the program's output ended" if self._open == 0 else f"{timeout:g} s passed"
                    if self.proc.poll() is None:  # a failed test leaves no program running
                        self.proc.kill()
                    pytest.fail(f"{ended} before {what}:\nstdout: {''.join(self.lines['stdout'])[-2000:]}\n"
                                f"stderr: {''.join(self.lines['stderr'])[-2000:]}")
                self._changed.wait(remaining)

    def finish(self, *, timeout: float = GUARD_S) -> tuple[str, str]:
        """Wait for the program to end and its output to be read; return ``(stdout, stderr)``.

        Raises ``subprocess.TimeoutExpired`` when it does not end within ``timeout``.
        """
        self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout)
        return self.text("stdout"), self.text("stderr")
