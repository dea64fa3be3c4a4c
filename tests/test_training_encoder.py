"""``ser-train encoder --quick`` end to end on real clips with the tiny random encoder.

The run is the CLI's: real corpus clips, the real feature path, a real (random, tiny) int8
embedder exported through TensorFlow and ONNX Runtime, scikit-learn heads, the merged ONNX
graph, the old CNN of ``models/`` at git HEAD, and ``ser_engine`` loading the result.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ser_engine.files.analysis import analyze_file
from ser_engine.inference.model import EmotionModel
from training.cli import main as train_main
from training.encoder.build import check_merged_parity
from training.encoder.embed import EmbedStats, embed_clips
from training.encoder.evaluate import clip_voiced_seconds, profile_clips
from training.encoder.head import DenseHead, EncoderHead, select_head
from training.encoder.refit import choose_recipe, leave_corpus_out, refit_all, shipping_pool
from training.encoder.report import target_verdicts
from training.encoder.run import (
    LABELS,
    QUICK_PER_LABEL,
    WeightsSpec,
    _calibrate,
    _window_features,
    embedder_file,
    prepare_clips,
    run_encoder,
    split_parts,
)
from training.encoder.voice import with_voice_head
from training.export import ExportError
from training.features import WindowSet, featurize_clips

pytestmark = [pytest.mark.training, pytest.mark.corpus, pytest.mark.slow]

CORPORA = ("ravdess", "casia", "uem-es")
"""Training/validation/test speakers (RAVDESS), the unseen validation (CASIA), an unseen test corpus (UEM)."""
TINY = WeightsSpec("tiny", {"d_model": 32, "seed": 0})


@pytest.fixture(scope="module")
def first(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run through ``ser-train encoder --quick`` (all corpora, one clip per corpus, part and label)."""
    base = tmp_path_factory.mktemp("encoder")
    cache = base / "cache" / "features"
    run_dir = base / "run"
    code = train_main(["--data", str(corpus_dir), "--cache-dir", str(cache), "--workers", "1",
                       "encoder", "--quick", "--run-dir", str(run_dir)])
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    return {"base": base, "cache": cache, "run_dir": run_dir, "results": results}


@pytest.fixture(scope="module")
def data(first: dict[str, Any], corpus_dir: Path) -> dict[str, Any]:
    """Read the quick run's clips, parts and vectors back from the cache."""
    clips, part_of, _ = prepare_clips(root=corpus_dir, per_label=QUICK_PER_LABEL)
    b4 = embedder_file(spec=TINY, n_blocks=4, cache_root=first["cache"].parent)
    stats = EmbedStats()
    ws = embed_clips(clips=clips, embedder_path=b4, cache_dir=first["cache"].parent / "embeddings",
                     feature_cache_dir=first["cache"], workers=1, log=lambda _: None, stats=stats)
    parts, _ = split_parts(ws, part_of=part_of)
    return {"clips": clips, "part_of": part_of, "b4": b4, "ws": ws, "parts": parts, "stats": stats}


def test_quick_run_writes_a_model_the_engine_runs(first: dict[str, Any], corpus_dir: Path) -> None:
    model_dir = first["run_dir"] / "model"
    model = EmotionModel.load(model_dir)
    assert model.labels == LABELS
    assert model.feature_config.n_mels == 80
    assert model.feature_config.n_frames == 298
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    assert meta["affect"]["output_name"] == "affect"
    assert meta["affect"]["names"] == ["arousal", "valence"]
    assert all(t > 0 for t in meta["affect"]["temperature"])
    assert meta["provenance"]["encoder"]["blocks_run"] == first["results"]["build"]["blocks"]
    assert meta["voice_calibration"]["reference_logits"]
    assert 0 <= meta["uncertainty_threshold"] < 1
    # the threshold is the stated rule applied to the validation curve the model carries
    points = meta["confidence_tradeoff"]["points"]
    answering = [p["min_confidence"] for p in points if p["coverage"] >= 0.8]
    assert meta["uncertainty_threshold"] == (max(answering) if answering else points[0]["min_confidence"])
    assert model.metadata.tradeoff_at() is not None
    # the graph has the affect output beside the logits, (batch, 2)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["logits", "affect", "voice_logits"]
    x = np.zeros((3, 298, 80), np.float32)
    logits, affect, voice = sess.run(None, {"features": x})
    assert logits.shape == (3, 7)
    assert affect.shape == (3, 2)
    assert voice.shape == (3, 7)
    # the profile's use the validation chose is the one model.json declares
    cal = first["results"]["shipped"]["calibration"]
    assert cal["method"] in ("shift", "blend")
    assert meta["voice_calibration"].get("head_output") == ("voice_logits" if cal["method"] == "blend" else None)
    assert meta["voice_calibration"]["strength"] == cal["strength"] == first["results"]["calibration"]["strength"]
    # a real clip through the file analysis of `ser analyze`
    clip = next(iter(sorted((corpus_dir / "ravdess").rglob("*.flac"))))
    result = analyze_file(clip, model)
    assert result.ok
    assert result.label in LABELS
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    # every output: results, report section, model card (strict JSON, the old CNN beside)
    for name in ("encoder_results.json", "results.json"):
        json.loads((first["run_dir"] / name).read_text(encoding="utf-8"), parse_constant=_refuse)
    md = (first["run_dir"] / "encoder_results.md").read_text(encoding="utf-8")
    assert "old CNN" in md
    assert "QUICK SMOKE RUN" in md
    card = (first["run_dir"] / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "random tiny encoder" in card
    met, missed = target_verdicts(first["results"])
    assert "## Targets missed and met" in card
    assert all(phrase in card for phrase in met + missed)
    old = first["results"]["evaluation"]["old"]
    assert set(old) == {"test", "unseen_test"}
    new = first["results"]["evaluation"]["new"]
    assert old["test"]["zero_shot"]["all"]["n"] == new["test"]["zero_shot"]["all"]["n"]


def _refuse(token: str) -> None:
    raise ValueError(f"non-strict JSON constant {token}")


def test_second_run_reuses_the_embedding_cache(first: dict[str, Any], corpus_dir: Path, tmp_path: Path) -> None:
    cache_info = first["results"]["data"]["embedding_cache"]
    assert cache_info["computed"] == cache_info["chunks"] > 0
    assert cache_info["reused"] == 0
    files = sorted(Path(cache_info["folder"]).glob("*.npz"))
    assert len(files) == cache_info["chunks"]
    mtimes = {f: os.stat(f).st_mtime_ns for f in files}
    again = run_encoder(root=corpus_dir, run_dir=tmp_path / "run2", cache_dir=first["cache"], workers=1, quick=True,
                        log=lambda _: None)
    info = again["data"]["embedding_cache"]
    assert info["computed"] == 0
    assert info["windows_computed"] == 0
    assert info["reused"] == cache_info["chunks"]
    assert {f: os.stat(f).st_mtime_ns for f in files} == mtimes
    # the same vectors give the same choice
    assert again["selection"]["candidate"] == first["results"]["selection"]["candidate"]


def test_a_killed_run_resumes_at_the_missing_chunk(first: dict[str, Any], data: dict[str, Any]) -> None:
    folder = Path(first["results"]["data"]["embedding_cache"]["folder"])
    files = sorted(folder.glob("*.npz"))
    lost = files[len(files) // 2]
    kept = {f: os.stat(f).st_mtime_ns for f in files if f != lost}
    lost.unlink()
    stats = EmbedStats()
    ws = embed_clips(clips=data["clips"], embedder_path=data["b4"], cache_dir=folder.parent,
                     feature_cache_dir=first["cache"], workers=1, log=lambda _: None, stats=stats)
    assert stats.computed == 1
    assert stats.reused == len(files) - 1
    assert lost.is_file()
    assert {f: os.stat(f).st_mtime_ns for f in kept} == kept
    np.testing.assert_array_equal(ws.clip_index, data["ws"].clip_index)
    np.testing.assert_array_equal(ws.features, data["ws"].features)


def test_vectors_are_the_embedder_on_the_clips_speech_windows(first: dict[str, Any], data: dict[str, Any]) -> None:
    from training.whisper.embedder import Embedder

    ws: WindowSet = data["ws"]
    clips = data["clips"][:3]
    x = _window_features(clips, cache_dir=first["cache"], workers=1)
    direct = Embedder(data["b4"], threads=1, batch_size=1)(x)
    cached = ws.features[np.isin(ws.clip_index, [0, 1, 2])].astype(np.float32)
    assert cached.shape == direct.shape == (x.shape[0], 4, 32)
    np.testing.assert_allclose(cached, direct, rtol=2e-3, atol=2e-3)  # float16 storage


def _permute_labels(ws: WindowSet, *, seed: int, only: str | None = None) -> WindowSet:
    """Shuffle the clips' labels (among the clips of corpus ``only``, if given)."""
    rng = np.random.default_rng(seed)
    idx = [i for i, c in enumerate(ws.clips) if only is None or c.corpus == only]
    order = rng.permutation(len(idx))
    if np.array_equal(order, np.arange(len(idx))):  # a permutation that moved nothing: rotate
        order = np.roll(order, 1)
    clips = list(ws.clips)
    for i, j in zip(idx, order, strict=True):
        clips[i] = replace(ws.clips[i], label=ws.clips[idx[j]].label)
    assert [c.label for c in clips] != [c.label for c in ws.clips]
    return replace(ws, clips=clips)


def test_selection_and_calibration_never_read_test_labels(first: dict[str, Any], data: dict[str, Any]) -> None:
    parts: dict[str, WindowSet] = data["parts"]
    shuffled = dict(parts)
    for p in ("test", "unseen_test"):
        shuffled[p] = _permute_labels(parts[p], seed=1)
        assert [c.label for c in shuffled[p].clips] != [c.label for c in parts[p].clips]
    quiet = {"labels": LABELS, "log": lambda _: None}
    a = select_head(parts=parts, **quiet)  # type: ignore[arg-type]
    b = select_head(parts=shuffled, **quiet)  # type: ignore[arg-type]
    assert a.candidate == b.candidate
    assert a.table == b.table
    assert a.affect_table == b.affect_table
    # the recipe's leave-one-corpus-out reads neither the test speakers nor the unseen test corpora
    ra, ta = choose_recipe(parts=parts, selection=a, labels=LABELS, log=lambda _: None)
    rb, tb = choose_recipe(parts=shuffled, selection=b, labels=LABELS, log=lambda _: None)
    assert ta == tb
    assert ra.candidate == rb.candidate
    assert "uem-es" not in ta["corpora"]
    gate = EmotionModel.load(first["run_dir"] / "old_model")
    ha, hb = (with_voice_head(s.head, train=parts["train"], candidate=s.candidate, labels=LABELS) for s in (a, b))
    ca = _calibrate(head=ha, parts=parts, gate_model=gate, workers=1, log=lambda _: None)
    cb = _calibrate(head=hb, parts=shuffled, gate_model=gate, workers=1, log=lambda _: None)
    for key in ("temperature", "method", "reference_logits", "strength", "threshold", "strength_search"):
        assert ca[key] == cb[key]
    # the check can fail: shuffling the validation labels changes what selection sees
    moved = dict(parts)
    for p in ("val", "unseen_val"):
        moved[p] = _permute_labels(parts[p], seed=2)
    c = select_head(parts=moved, **quiet)  # type: ignore[arg-type]
    assert c.table != a.table


def test_merged_graph_equals_embedder_plus_the_read_out_refitted_on_every_corpus(
    first: dict[str, Any], data: dict[str, Any]
) -> None:
    sel, table = choose_recipe(parts=data["parts"], selection=select_head(parts=data["parts"], labels=LABELS,
                                                                           log=lambda _: None),
                               labels=LABELS, log=lambda _: None)
    assert sel.candidate.to_dict() == first["results"]["selection"]["candidate"]
    assert table == first["results"]["recipe"]
    shipped = refit_all(parts=data["parts"], selection=sel, labels=LABELS, log=lambda _: None)
    head = shipped["head"]
    model_path = first["run_dir"] / "model" / "model.onnx"
    x = _window_features(data["parts"]["test"].clips[:4], cache_dir=first["cache"], workers=1)
    bk = embedder_file(spec=TINY, n_blocks=head.n_blocks, cache_root=first["cache"].parent)
    diffs = check_merged_parity(model_path=model_path, embedder_paths=[bk, data["b4"]], head=head, features=x)
    assert max(diffs.values()) < 1e-4
    # the selection's own read-out (fitted without the unseen corpora) is not the graph's
    with pytest.raises(ExportError):
        check_merged_parity(model_path=model_path, embedder_paths=[bk], head=sel.head, features=x)
    # nor is a head that differs by a bias
    w = head.emotion
    shifted = DenseHead(blocks=w.blocks, weights=w.weights, biases=(w.biases[0] + 0.01, *w.biases[1:]))
    other = EncoderHead(emotion=shifted, affect=head.affect)
    with pytest.raises(ExportError):
        check_merged_parity(model_path=model_path, embedder_paths=[bk], head=other, features=x)
    # nor one whose voice calibration head differs by a bias
    assert head.voice is not None
    assert any(k.endswith("/voice_logits") for k in diffs)
    v = head.voice.head
    moved = replace(head.voice, head=DenseHead(blocks=v.blocks, weights=v.weights, biases=(v.biases[0] + 0.01,)))
    with pytest.raises(ExportError):
        check_merged_parity(model_path=model_path, embedder_paths=[bk], head=replace(head, voice=moved), features=x)
    # model.json carries what the refit measured: temperature and the left-out figures
    meta = json.loads((first["run_dir"] / "model" / "model.json").read_text(encoding="utf-8"))
    assert meta["temperature"] == pytest.approx(shipped["temperature"])
    if meta["voice_calibration"].get("head_output"):  # the blend's reference is the shipped voice head's
        np.testing.assert_allclose(meta["voice_calibration"]["reference_logits"], head.voice.reference, atol=1e-5)
    assert meta["metrics"]["unseen_corpora"]["mean_corpus_uar"] == shipped["left_out"]["mean_corpus_uar"]
    assert meta["provenance"]["corpora"] == shipped["corpora"]
    assert {"casia", "uem-es", "ravdess"} <= set(shipped["corpora"])  # the held-out corpora are fitted on too


def test_each_corpus_is_scored_by_a_read_out_that_never_saw_it(data: dict[str, Any]) -> None:
    parts: dict[str, WindowSet] = data["parts"]
    sel = select_head(parts=parts, labels=LABELS, log=lambda _: None)
    pool = shipping_pool(parts)
    a = leave_corpus_out(pool=pool, selection=sel, labels=LABELS, log=lambda _: None)
    assert a.corpora == sorted({c.corpus for c in pool.clips})
    assert {"casia", "uem-es", "ravdess"} <= set(a.corpora)
    assert not np.isnan(a.emotion).any()
    assert not np.isnan(a.affect).any()
    # relabel one corpus: its own out-of-fold scores cannot move, every other corpus's must
    corpus = np.array([c.corpus for c in pool.clips])[pool.clip_index]
    moved = _permute_labels(pool, seed=3, only="casia")
    b = leave_corpus_out(pool=moved, selection=sel, labels=LABELS, log=lambda _: None)
    mine = corpus == "casia"
    np.testing.assert_array_equal(a.emotion[mine], b.emotion[mine])
    np.testing.assert_array_equal(a.affect[mine], b.affect[mine])
    assert not np.allclose(a.emotion[~mine], b.emotion[~mine])


def test_the_shipped_read_out_never_reads_test_speakers_labels(data: dict[str, Any]) -> None:
    parts: dict[str, WindowSet] = data["parts"]
    sel = select_head(parts=parts, labels=LABELS, log=lambda _: None)
    shuffled = dict(parts)
    shuffled["test"] = _permute_labels(parts["test"], seed=1)
    quiet = {"selection": sel, "labels": LABELS, "log": lambda _: None}
    a = refit_all(parts=parts, **quiet)  # type: ignore[arg-type]
    b = refit_all(parts=shuffled, **quiet)  # type: ignore[arg-type]
    for key in ("temperature", "affect_temperature", "left_out", "train_windows"):
        assert a[key] == b[key]
    x = parts["test"].features
    np.testing.assert_array_equal(a["head"].emotion(x), b["head"].emotion(x))
    # the unseen test corpus is fitted on: relabelling it moves the shipped read-out
    moved = dict(parts)
    moved["unseen_test"] = _permute_labels(parts["unseen_test"], seed=2)
    c = refit_all(parts=moved, **quiet)  # type: ignore[arg-type]
    assert not np.allclose(a["head"].emotion(x), c["head"].emotion(x))


def test_profiles_hold_eight_seconds_of_voiced_speech_as_ser_calibrate_counts(corpus_dir: Path, tmp_path: Path) -> None:
    from ser_engine.inference.profile import profile_from_files
    from training.corpora import load_corpus

    clips, _ = load_corpus(root=corpus_dir, corpus="ravdess")
    speaker = clips[0].speaker
    mine = [c for c in clips if c.speaker == speaker][:16]  # RAVDESS: its 4 neutral clips come first
    model = EmotionModel.load(Path(__file__).resolve().parent.parent / "models")
    ws = featurize_clips(clips=mine, config=model.feature_config, cache_dir=tmp_path, workers=1, progress=False)
    voiced = clip_voiced_seconds(clips=mine, model=model)
    prof = profile_clips(ws, speech_s=voiced, min_speech_s=8.0, seed=0)
    chosen = prof.chosen[speaker]
    assert all(mine[i].label == "neutral" for i in chosen)
    assert prof.speech_s[speaker] >= 8.0
    # one clip fewer would not have reached 8 s: the profile is as short as the rule allows
    assert prof.speech_s[speaker] - max(voiced[i] for i in chosen) < 8.0
    # the seconds `ser calibrate` counts for the same files
    made = profile_from_files([Path(mine[i].path) for i in chosen], model=model, name="t", min_speech_s=8.0)
    assert made.speech_s == pytest.approx(prof.speech_s[speaker], abs=1e-3)


def _verdict_results(*, unseen: float, zero: float, cal: float, test_uar: float, ece_test: float,
                     ece_unseen: float, arousal: float, valence: float) -> dict[str, Any]:
    held = {  # the held-out protocol's read-out: only its voice-profile gain is judged
        "unseen_test": {
            "zero_shot": {"mean_corpus_uar": 0.99, "all": {"ece": 0.99}},
            "calibrated": {"model_strength": {"zero_shot": {"mean_corpus_uar": zero},
                                              "calibrated": {"mean_corpus_uar": cal}}},
        },
        "test": {"zero_shot": {"all": {"uar": 0.0, "ece": 0.99}}},
    }
    shipped = {
        "left_out": {
            "zero_shot": {"mean_corpus_uar": unseen, "all": {"ece": ece_unseen}},
            "affect": {"arousal": {"affect_output": {"mean_corpus_uar": arousal}},
                       "valence": {"affect_output": {"mean_corpus_uar": {"uar": valence}}}},
        },
        "test": {"zero_shot": {"all": {"uar": test_uar, "ece": ece_test}}},
    }
    return {"evaluation": {"new": held}, "shipped": {"tables": shipped}}


def test_target_verdicts_sort_each_figure_by_its_target() -> None:
    met, missed = target_verdicts(_verdict_results(unseen=0.333, zero=0.337, cal=0.356, test_uar=0.72,
                                                   ece_test=0.141, ece_unseen=0.05, arousal=0.81, valence=0.6))
    assert met == ["test speakers' UAR (72.0 % against >= 70.0 %)",
                   "ECE on unseen corpora (5.0 % against <= 12.0 %)",
                   "arousal on unseen corpora (81.0 % against >= 80.0 %)"]
    assert missed == ["unseen-corpus mean UAR, zero-shot (each corpus left out in turn) (33.3 % against >= 45.0 %)",
                      "the gain from a voice profile on unseen corpora (held-out protocol) (+1.9 points against +5)",
                      "ECE on test speakers (14.1 % against <= 8.0 %)",
                      "valence on unseen corpora (60.0 % against >= 65.0 %)"]
