"""The ser-train command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.cli import main


@pytest.mark.corpus
def test_corpora_counts(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(corpus_dir), "corpora"]) == 0
    out = capsys.readouterr().out
    assert "ravdess: 1440 clips" in out and "crema-d: 7442 clips" in out
    assert "tess: 2800 clips" in out and "savee: 480 clips" in out


def test_split_refuses_to_overwrite(capsys: pytest.CaptureFixture[str], corpus_dir: Path) -> None:
    assert main(["--data", str(corpus_dir), "split"]) == 1
    assert "--force" in capsys.readouterr().err


def test_missing_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "nowhere"), "corpora"]) == 2
    err = capsys.readouterr().err
    assert "ser-train:" in err and "nowhere" in err and "Traceback" not in err


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fly"])
    assert exc.value.code == 2
