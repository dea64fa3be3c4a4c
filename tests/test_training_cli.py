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

    from ser_engine.inference.model import EmotionModel

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


STAGES = ("leak", "search", "ravdess", "all")


@pytest.mark.corpus
def test_seeds_dry_run_prints_the_plan_and_its_time(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data", str(corpus_dir), "seeds", "--dry-run", "--search-trials", "4", "--copies", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = [r for r in (line.split() for line in out.splitlines()) if r and r[0].split("#")[0] in STAGES]
    assert {r[3] for r in rows if r[0].startswith("leak")} == {"random", "augment_before_split", "speaker_independent"}
    assert [r[0] for r in rows if r[0].startswith("search")] == ["search#1", "search#2", "search#3"]  # 0: leak's fit
    # RAVDESS speaker split: 16 of 24 actors train, one copy each; the 1D CNN on the recordings
    si = {r[1]: r[5] for r in rows if r[0].split("#")[0] in ("leak", "ravdess") and r[3] == "speaker_independent"}
    assert si["knn"] == f"{16 * 60 * 2:,}"
    assert si["cnn1d"] == f"{16 * 60:,}"
    assert "1,440 augmented copies" in out
    assert "on a 2-core machine without AVX2 (x2)" in out
    assert "(target 60)" in out


def test_seeds_refuses_bad_budgets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seeds", "--dry-run", "--copies", "0"]) == 2
    assert "copies" in capsys.readouterr().err
    assert main(["seeds", "--max-epochs", "0"]) == 2


@pytest.mark.corpus
@pytest.mark.training
@pytest.mark.slow
def test_seeds_quick_writes_every_section_and_renders(corpus_dir: Path, tmp_path: Path) -> None:
    import json

    from training.report import seed_systems_section
    from training.seeds.leak import PROTOCOLS

    run_dir = tmp_path / "run"
    argv = [
        "--data",
        str(corpus_dir),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--workers",
        "1",
        "seeds",
        "--quick",
        "--run-dir",
        str(run_dir),
    ]
    assert main(argv) == 0
    seeds = json.loads((run_dir / "results_seeds.json").read_text())
    assert seeds["quick"] is True
    assert set(seeds["feature_sets"]) == {"mfcc", "mfcc_zcr_rms", "mfcc_chroma_mel"}
    assert seeds["feature_sets"]["mfcc_zcr_rms"]["per_frame"] == 22
    runs = seeds["runs"]
    assert {r["stage"] for r in runs} == {"leak", "search", "ravdess", "all"}
    for r in runs:
        for key in ("model", "features", "parameters", "epochs_run", "train_s", "uar", "items", "input_shape"):
            assert key in r
        assert 0.0 <= r["uar"]["val"] <= 1.0
        assert r["uar"]["test"]["all"] is not None
        if r["protocol"] == "speaker_independent":  # test speakers and the unseen corpora, per corpus
            assert set(r["uar"]["unseen_val"]) == {"all", "casia"}
            assert set(r["uar"]["unseen_test"]) == {"all", "uem-es", "emotiontts-ko"}
        if r["model"] in ("cnn1d", "cnn_bilstm"):
            assert r["epochs_run"] >= 1
            assert r["parameters"] > 0
    every = next(r for r in runs if r["stage"] == "all" and r["model"] == "knn")
    assert set(every["uar"]["test"]) == {
        "all",
        "ravdess",
        "crema-d",
        "tess",
        "savee",
        "ased",
        "nemo",
        "turev",
        "indowave",
    }
    cnn1d = next(r for r in runs if r["model"] == "cnn1d")
    assert cnn1d["input_shape"] == [2376]  # the seeds' 1D CNN input: 108 frames x 22 features
    assert cnn1d["copies"] == 0
    bilstm = next(r for r in runs if r["model"] == "cnn_bilstm")
    assert bilstm["input_shape"] == [174, 40]
    abs_ = [r for r in runs if r["protocol"] == "augment_before_split"]
    assert all("test_recordings" in r["uar"] for r in abs_)
    leak = seeds["leak_table"]
    assert {(r["model"], r["features"]) for r in leak} == {
        ("decision_tree", "mfcc_zcr_rms"),
        ("decision_tree", "mfcc_chroma_mel"),
        ("knn", "mfcc_zcr_rms"),
        ("knn", "mfcc_chroma_mel"),
        ("cnn_bilstm", "mfcc"),
    }
    for row in leak:
        for p in PROTOCOLS:
            assert row[p] is not None
        assert row["points_random"] == pytest.approx(100 * (row["random"] - row["speaker_independent"]))
    search = seeds["search"]
    assert [t["trial"] for t in search["trials"]] == [0, 1]
    chosen = next(t for t in search["trials"] if t["trial"] == search["best_trial"])
    assert chosen["score"] == max(t["score"] for t in search["trials"])
    assert next(r for r in runs if r["stage"] == "all" and r["model"] == "cnn_bilstm")["config"] == chosen["config"]
    assert seeds["timings_min"]["total"] > 0
    md = "\n".join(seed_systems_section(seeds=seeds, results={}))
    assert "## Seed systems" in md
    assert "Smoke run" in md
