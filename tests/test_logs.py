"""ser_engine.logs: no handlers on import, private log file, stderr levels, tracebacks only in the file."""

from __future__ import annotations

import contextlib
import io
import logging
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ser_engine import logs
from ser_engine.logs import configure_logging, default_log_path, get_logger


@pytest.fixture(autouse=True)
def _restore_ser_logger() -> Iterator[None]:
    root = logging.getLogger("ser")
    level = root.level
    yield
    while logs._installed:
        h = logs._installed.pop()
        root.removeHandler(h)
        h.close()
    root.setLevel(level)


def test_importing_the_engine_installs_no_handler() -> None:
    code = (
        "import logging, ser_engine, ser_engine.files.analysis, ser_engine.inference.model, ser_engine.dsp.audio\n"
        "import ser_engine.logs\n"
        "names = [n for n in logging.root.manager.loggerDict if n == 'ser' or n.startswith('ser.')]\n"
        "assert all(not logging.getLogger(n).handlers for n in names), names\n"
        "assert not logging.root.handlers, logging.root.handlers\n"
        "assert 'ser.analysis' in names, names\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_module_loggers_are_children_of_ser() -> None:
    assert get_logger("ser_engine.files.analysis").name == "ser.analysis"
    assert get_logger("app").name == "ser.app"
    assert get_logger("ser_engine.files.analysis").parent is logging.getLogger("ser")


def test_default_log_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_log_path() == tmp_path / "state" / "ser" / "ser.log"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # not absolute: ignored, as XDG says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_log_path() == tmp_path / "home" / ".local" / "state" / "ser" / "ser.log"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_log_path() == tmp_path / "home" / ".local" / "state" / "ser" / "ser.log"
    assert not (tmp_path / "home").exists()  # only a path: nothing created


def test_log_file_is_private_and_holds_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ser" / "ser.log"
    err = io.StringIO()
    configure_logging(verbose=False, log_file=path, stream=err)
    log = get_logger("ser_engine.files.analysis")
    log.debug("a debug detail")
    log.info("clip.wav: not an audio file")
    try:
        {}["missing"]
    except KeyError:
        log.exception("analysis stopped")
    for h in logs._installed:
        h.flush()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "clip.wav: not an audio file" in text
    assert "a debug detail" not in text
    assert "Traceback (most recent call last)" in text
    assert "KeyError: 'missing'" in text
    # stderr: warnings and above, one line each, no traceback
    assert err.getvalue() == "ser: ERROR: analysis stopped\n"


def test_file_only_records_skip_stderr_but_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ser.log"
    err = io.StringIO()
    configure_logging(verbose=True, log_file=path, stream=err)
    log = get_logger("ser_engine.live.session")
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        log.exception("live analysis stopped", extra=logs.FILE_ONLY)
    log.warning("shown")
    for h in logs._installed:
        h.flush()
    assert err.getvalue() == "ser: WARNING: shown\n"  # the program says the first in its own words
    text = path.read_text()
    assert "live analysis stopped" in text
    assert "RuntimeError: a bug" in text


def test_existing_log_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "ser.log"
    path.write_text("old line\n")
    path.chmod(0o644)
    configure_logging(verbose=False, log_file=path, stream=io.StringIO())
    get_logger("x").warning("new line")
    for h in logs._installed:
        h.flush()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("old line\n")
    assert path.read_text().rstrip().endswith("new line")


@pytest.mark.parametrize(
    ("verbose", "expected"),
    [(False, ["WARNING: w"]), (True, ["DEBUG: d", "INFO: i", "WARNING: w"])],
)
def test_verbose_sets_the_stderr_level(verbose: bool, expected: list[str]) -> None:
    err = io.StringIO()
    configure_logging(verbose=verbose, log_file=None, stream=err)
    log = get_logger("ser_engine.inference.model")
    log.debug("d")
    log.info("i")
    log.warning("w")
    assert err.getvalue().splitlines() == [f"ser: {line}" for line in expected]


def test_configuring_again_replaces_the_handlers(tmp_path: Path) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(verbose=False, log_file=tmp_path / "a.log", stream=first)
    configure_logging(verbose=False, log_file=None, stream=second)
    get_logger("x").warning("once")
    assert first.getvalue() == ""
    assert second.getvalue() == "ser: WARNING: once\n"
    assert len(logging.getLogger("ser").handlers) == 1


def test_a_log_file_on_a_full_disk_is_said_once_and_the_program_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from privileged import small_tmpfs

    with small_tmpfs(tmp_path / "disk", size="64k") as disk:
        path = disk / "ser" / "ser.log"
        console = io.StringIO()
        configure_logging(verbose=False, log_file=path, stream=console)
        log = get_logger("ser_engine.files.analysis")
        log.info("before the disk filled")
        filler = disk / "filler"
        with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
        for i in range(200):  # far more than the free space: every write fails
            log.info("clip_%03d.wav: not an audio file %s", i, "x" * 200)
        log.warning("still on stderr")
        err = capsys.readouterr().err
        assert err.splitlines() == [
            f"ser: cannot write the log file {path}: No space left on device; going on without it"], err
        assert "Logging error" not in err
        assert console.getvalue() == "ser: WARNING: still on stderr\n"  # the console is not affected
        assert "before the disk filled" in path.read_text(encoding="utf-8", errors="replace")
        while logs._installed:  # close the file before the tmpfs is unmounted
            h = logs._installed.pop()
            logging.getLogger("ser").removeHandler(h)
            with contextlib.suppress(OSError):
                h.close()
