"""The ser-train command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.cli import main


@pytest.mark.corpus
def test_corpora_counts(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(corpus_dir), "corpora"]) == 0
    out = capsys.readouterr().out
    clips = {line.split()[0]: line.split()[-3] for line in out.splitlines()[2:13]}  # column "clips"
    assert clips["ravdess"] == "1440"
    assert clips["crema-d"] == "7442"
    assert clips["tess"] == "2800"
    assert clips["savee"] == "480"
    assert clips["nemo"] == "4481"


def test_split_refuses_to_overwrite(capsys: pytest.CaptureFixture[str], corpus_dir: Path) -> None:
    assert main(["--data", str(corpus_dir), "split"]) == 1
    assert "--force" in capsys.readouterr().err


def test_missing_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "nowhere"), "corpora"]) == 2
    err = capsys.readouterr().err
    assert "ser-train:" in err
    assert "nowhere" in err
    assert "Traceback" not in err


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fly"])
    assert exc.value.code == 2


@pytest.mark.corpus
@pytest.mark.training
@pytest.mark.slow
def test_all_quick_runs_every_stage_and_ships_a_loadable_model(corpus_dir: Path, tmp_path: Path) -> None:
    """`ser-train all --quick`: the real command end to end on a few real clips per split."""
    import json

    from ser_engine.model import EmotionModel

    out, docs, run = tmp_path / "models", tmp_path / "docs", tmp_path / "run"
    argv = ["--data", str(corpus_dir), "--cache-dir", str(tmp_path / "cache"), "--workers", "1", "all", "--quick"]
    assert main([*argv, "--out", str(out), "--docs", str(docs), "--run-dir", str(run)]) == 0
    model = EmotionModel.load(out)
    meta = json.loads((out / "model.json").read_text())
    assert model.labels == ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
    assert meta["temperature"] > 0
    assert "all" in meta["metrics"]["test_speakers"]
    assert meta["provenance"]["command"] == "ser-train all --quick"
    assert meta["provenance"]["parity_max_abs_prob_diff"] < 1e-4
    # the choices made on validation travel in model.json and the engine reads them
    assert model.metadata.voice_reference is not None
    assert len(model.metadata.voice_reference) == 7
    assert meta["voice_calibration"]["strength"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert model.metadata.uncertainty_threshold == meta["uncertainty_threshold"] > 0
    assert not {"casia", "uem-es", "emotiontts-ko"} & set(meta["provenance"]["corpora"])
    results = json.loads((run / "results.json").read_text())
    for name in ("decision_tree", "knn", "svm", "cnn2d"):
        assert name in results["models"]
    cnn = results["models"]["cnn2d"]
    assert {"val", "test", "unseen_val", "unseen_test"} <= set(cnn)
    assert {c for c in cnn["unseen_test"] if c != "all"} <= {"uem-es", "emotiontts-ko"}
    assert set(results["voice_calibration"]["eval"]["unseen_test"]) == {"k2", "k4"}
    assert set(results["timings_min"]) >= {"data", "search", "final_model", "export", "evaluation", "ravdess8"}
    report = (docs / "results.md").read_text()
    assert "RAVDESS" in report
    assert "quick" in report.lower()
    assert (out / "MODEL_CARD.md").is_file()
    # `ser-train evaluate` redoes the validation choices and the test figures from the finished run
    (out / "model.json").unlink()
    assert main([*argv[:-2], "evaluate", "--quick", "--out", str(out), "--docs", str(docs), "--run-dir", str(run)]) == 0
    assert EmotionModel.load(out).metadata.voice_reference == model.metadata.voice_reference


@pytest.mark.corpus
def test_overview_writes_the_figure(corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures" / "overview.png"
    assert main(["--data", str(corpus_dir), "overview", "--out", str(out)]) == 0
    assert out.stat().st_size > 50_000
    assert str(out) in capsys.readouterr().out
    assert main(["--data", str(tmp_path / "nowhere"), "overview", "--out", str(out)]) == 2
    assert "nowhere" in capsys.readouterr().err


@pytest.mark.corpus
@pytest.mark.training
def test_seeds_dry_run_lists_models_features_protocols(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data", str(corpus_dir), "seeds", "--dry-run", "--search-trials", "3", "--copies", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [
        line.split()
        for line in out.splitlines()
        if line.split()[:1] in (["decision_tree"], ["knn"], ["cnn1d"], ["cnn_bilstm"])
    ]
    assert len(rows) == 6 * 3 + 6  # RAVDESS leak table, then every seed run on all training corpora
    ravdess = [r for r in rows if r[4] == "ravdess"]
    assert {(r[0], r[3]) for r in ravdess} >= {("cnn1d", "augment_before_split"), ("knn", "random")}
    # RAVDESS speaker split: 16 of 24 actors train, one copy each
    assert {r[6] for r in ravdess if r[3] == "speaker_independent"} == {f"{16 * 60 * 2:,}"}
    # 18 RAVDESS fits, 5 seed runs once on all corpora, the CNN+BiLSTM's 3 search trials
    assert "7,193,223" in out
    assert "26 fits" in out
    assert "featurized items" in out
    assert "h per epoch" in out


def test_seeds_without_dry_run_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seeds"]) == 2
    assert "--dry-run" in capsys.readouterr().err
    assert main(["seeds", "--dry-run", "--copies", "0"]) == 2
