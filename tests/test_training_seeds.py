"""The seed models rebuilt for our protocol (training/seeds/systems.py), their features and their plan.

The model tests use the STAND-IN features (librosa MFCC, training.seeds.systems.standin_mfcc) to
compare with; the real run's features (training/seeds/data.py, ser_engine's featurizer through
the engine's audio path) and the budgeted plan (training/seeds/run.py) are tested below them.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from ser_engine.errors import ParameterError
from training.corpora import HARMONISED_LABELS, load_corpus
from training.seeds.leak import Item, speaker_independent_split
from training.seeds.systems import (
    BILSTM_DEFAULT,
    SEARCH_SPACE,
    SeedRun,
    augment_item,
    build_seed_cnn1d,
    build_seed_cnn_bilstm,
    check_search_config,
    draw_search_config,
    featurize_items,
    fit_keras,
    model_macs,
    run_seed,
    search_configs,
    standardise,
    standin_mfcc,
    view,
)

# STAND-IN features, small so the networks train in seconds: 13 MFCC every 64 ms.
STANDIN = partial(standin_mfcc, n_mfcc=13, hop_length=1024)


@pytest.fixture(scope="module")
def ravdess(corpus_dir: Path) -> list:
    clips, _ = load_corpus(root=corpus_dir, corpus="ravdess")
    return clips


@pytest.fixture(scope="module")
def tiny_parts(ravdess: list) -> dict[str, list[Item]]:
    """Speaker-independent parts cut down: 4 clips per label in train (one augmented copy each), 2 in val and test."""
    parts = speaker_independent_split(clips=ravdess, copies=1)
    keep = {"train": 4, "val": 2, "test": 2}
    out: dict[str, list[Item]] = {}
    for p, n in keep.items():
        seen: Counter[str] = Counter()
        chosen = []
        for it in parts[p]:
            if it.copy == 0 and seen[it.clip.label] < n:
                seen[it.clip.label] += 1
                chosen.append(it.clip)
        out[p] = [i for i in parts[p] if i.clip in chosen]
    return out


@pytest.mark.training
def test_seed_cnn1d_has_about_7m_parameters_and_seed_shapes() -> None:
    net = build_seed_cnn1d(n_labels=7)
    assert 6.5e6 <= net.count_params() <= 7.5e6
    assert tuple(net.input.shape) == (None, 2376)
    assert tuple(net.output.shape) == (None, 7)
    convs = [layer for layer in net.layers if type(layer).__name__ == "Conv1D"]
    assert len(convs) == 5
    out = np.asarray(net(np.zeros((3, 2376), np.float32), training=False))
    assert out.shape == (3, 7)
    assert np.isfinite(out).all()
    small = build_seed_cnn1d(input_dim=650, n_labels=8)
    assert tuple(small.output.shape) == (None, 8)
    assert small.count_params() < net.count_params()
    assert model_macs(net) > 1e9  # the seeds' CNN costs about 2 GMAC per item


@pytest.mark.training
def test_seed_cnn_bilstm_takes_174_by_40_mfcc() -> None:
    net = build_seed_cnn_bilstm(n_labels=7)
    assert tuple(net.input.shape) == (None, 174, 40)
    assert tuple(net.output.shape) == (None, 7)
    assert any(type(layer).__name__ == "Bidirectional" for layer in net.layers)
    assert 5e4 < net.count_params() < 1e6
    for cfg in search_configs(n=3, rng=np.random.default_rng(1)):
        other = build_seed_cnn_bilstm(n_labels=7, config=cfg)
        x = np.random.default_rng(0).normal(size=(2, 174, 40)).astype(np.float32)
        assert np.asarray(other(x, training=False)).shape == (2, 7)
    with pytest.raises(ParameterError, match="outside"):
        build_seed_cnn_bilstm(n_labels=7, config={**BILSTM_DEFAULT, "lstm_units": 7})


def test_search_draws_valid_deterministic_configurations() -> None:
    a = search_configs(n=12, rng=np.random.default_rng(5))
    b = search_configs(n=12, rng=np.random.default_rng(5))
    c = search_configs(n=12, rng=np.random.default_rng(6))
    assert a == b
    assert a != c
    assert a[0] == BILSTM_DEFAULT
    assert len({tuple(sorted(x.items())) for x in a}) == 12
    for cfg in a + [draw_search_config(rng=np.random.default_rng(k)) for k in range(50)]:
        check_search_config(cfg)
    draws = [draw_search_config(rng=np.random.default_rng(k)) for k in range(200)]
    for key, space in SEARCH_SPACE.items():
        values = {d[key] for d in draws}
        if key in ("dropout", "learning_rate"):
            assert min(values) >= space[0]
            assert max(values) <= space[1]
            assert len(values) > 10
        else:
            assert values == set(space)  # every choice is reachable
    with pytest.raises(ParameterError, match="keys"):
        check_search_config({"filters": 64})


def test_views_and_standardisation() -> None:
    frames = [np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((5, 2), np.float32)]
    assert np.allclose(view(frames, kind="pooled"), [[2, 3], [1, 1]])
    seq = view(frames, kind="sequence", n_frames=4)
    assert seq.shape == (2, 4, 2)
    assert np.allclose(seq[0, 3], 0)
    assert np.allclose(seq[1], 1)
    flat = view(frames, kind="flat", n_frames=4)
    assert np.allclose(flat[0], [0, 2, 4, 0, 1, 3, 5, 0])  # feature 0's series, then feature 1's
    with pytest.raises(ParameterError, match="n_frames"):
        view(frames, kind="flat")
    xt, xo = standardise(seq, seq[:1] + 1.0)
    assert np.allclose(xt.reshape(-1, 2).mean(axis=0), 0, atol=1e-6)
    assert np.allclose(xt.reshape(-1, 2).std(axis=0), 1, atol=1e-5)
    assert xo.shape == (1, 4, 2)


@pytest.mark.corpus
def test_augmented_copies_are_reproducible(ravdess: list) -> None:
    from training.features import load_clip_audio

    clip = ravdess[100]
    y = load_clip_audio(clip.path, sample_rate=16000)
    assert augment_item(Item(clip), y, sample_rate=16000, seed=0) is y
    copies = [augment_item(Item(clip, k), y, sample_rate=16000, seed=0) for k in (1, 2)]
    again = augment_item(Item(clip, 1), y, sample_rate=16000, seed=0)
    assert np.array_equal(copies[0], again)
    for c in copies:
        assert c.dtype == np.float32
        assert np.isfinite(c).all()
    assert copies[0].shape == y.shape
    assert not np.allclose(copies[0], y, atol=1e-4)
    assert not np.allclose(copies[1][: y.size], y[: copies[1].size], atol=1e-3)  # pitch shift
    feats = featurize_items(items=[Item(clip), Item(clip, 1)], featurize=STANDIN)
    assert feats[0].shape[1] == 13
    assert not np.allclose(feats[0], feats[1])


@pytest.mark.corpus
@pytest.mark.training
@pytest.mark.slow
def test_tiny_training_end_to_end_on_real_clips(tiny_parts: dict[str, list[Item]]) -> None:
    assert [len(tiny_parts[p]) for p in ("train", "val", "test")] == [2 * 4 * 7, 2 * 7, 2 * 7]
    results = {}
    runs = [
        SeedRun("decision_tree", "standin", "pooled"),
        SeedRun("knn", "standin", "pooled"),
        SeedRun("cnn1d", "standin", "flat", 50),
        SeedRun("cnn_bilstm", "standin", "sequence", 50),
    ]
    for run in runs:
        r = run_seed(
            run=run, parts=tiny_parts, featurize=STANDIN, labels=HARMONISED_LABELS, max_epochs=2, patience=2, seed=0
        )
        results[run.model] = r
        assert 0.0 <= r["val_uar"] <= 1.0
        assert 0.0 <= r["test_uar"] <= 1.0
        assert r["items"] == {"train": 56, "val": 14, "test": 14}
    assert results["cnn1d"]["input_shape"] == [13 * 50]
    assert results["cnn_bilstm"]["input_shape"] == [50, 13]
    for name in ("cnn1d", "cnn_bilstm"):
        r = results[name]
        assert r["epochs_run"] == 2
        assert r["best_epoch"] in (1, 2)
        assert r["parameters"] > 0
        assert r["val_uar"] == max(r["history"]["val_uar"])
    assert results["decision_tree"]["parameters"] > 1  # tree nodes


@pytest.mark.corpus
@pytest.mark.training
@pytest.mark.slow
def test_early_stopping_stops_and_restores_the_best_weights(tiny_parts: dict[str, list[Item]]) -> None:
    import keras

    from training.seeds.systems import _uar

    x = {p: view(featurize_items(items=tiny_parts[p], featurize=STANDIN), kind="pooled") for p in ("train", "val")}
    index = {lab: i for i, lab in enumerate(HARMONISED_LABELS)}
    y = {p: np.array([index[it.clip.label] for it in tiny_parts[p]]) for p in x}
    xt, xv = standardise(x["train"], x["val"])
    net = keras.Sequential([keras.Input((13,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(7)])
    hist = fit_keras(
        model=net, x_train=xt, y_train=y["train"], x_val=xv, y_val=y["val"], n_labels=7,
        max_epochs=200, patience=3, learning_rate=3e-2, batch_size=8, seed=0,
    )  # fmt: skip
    assert hist["epochs_run"] < 200  # stopped by patience, not by the epoch limit
    assert hist["epochs_run"] == hist["best_epoch"] + 3 or hist["val_uar"][-1] < hist["best_val_uar"]
    restored = _uar(y["val"], np.asarray(net.predict(xv, verbose=0)).argmax(axis=1), 7)
    assert restored == pytest.approx(hist["best_val_uar"])


@pytest.mark.corpus
def test_default_plan_fits_the_hour_on_the_target_machine(corpus_dir: Path) -> None:
    from training.seeds.leak import PROTOCOLS
    from training.seeds.run import TARGET_SLOWDOWN, Budget, estimate, format_plan, make_plan, prepare_parts

    budget = Budget()
    plan = make_plan(budget)
    leak = [f for f in plan if f.stage == "leak"]
    assert {(f.run.model, f.protocol) for f in leak} == {
        (m, p) for m in ("decision_tree", "knn", "cnn_bilstm") for p in PROTOCOLS
    }
    assert len(leak) == 5 * 3  # tree and k-NN on two pooled sets, the CNN+BiLSTM, three protocols each
    assert [f.trial for f in plan if f.run.model == "cnn_bilstm" and f.protocol == "speaker_independent"] == [
        0,
        1,
        2,
        None,  # the leak table's fit is search trial 0; the all-corpora fit takes the search's choice
    ]
    cnn1d = [f for f in plan if f.run.model == "cnn1d"]
    assert len(cnn1d) == 1
    assert cnn1d[0].recordings_only
    assert {f.run.model for f in plan if f.stage == "all"} == {"decision_tree", "knn", "cnn_bilstm"}
    parts = prepare_parts(root=corpus_dir, budget=budget)
    est = estimate(plan=plan, parts=parts)
    assert est["target_min"] == pytest.approx(TARGET_SLOWDOWN * est["total_min"])
    assert est["target_min"] <= 60  # the budget's target: the full run within an hour at 2x
    rows = {r["name"]: r for r in est["rows"]}
    si = parts.leak["speaker_independent"]
    assert rows["leak/speaker_independent/knn/mfcc_zcr_rms"]["train"] == len(si["train"]) == 16 * 60 * 3
    assert rows["ravdess/speaker_independent/cnn1d/mfcc_zcr_rms"]["train"] == 16 * 60  # recordings only
    assert est["items"]["copies"] == 1440 * 2
    assert (
        len({it.id for it in parts.items()})
        == len(parts.items())
        == est["items"]["copies"] + est["items"]["recordings"]
    )
    text = format_plan(estimate_=est, budget=budget)
    assert f"{len(plan)} fits" in text
    assert "augment_before_split" in text
    assert "(target 60)" in text
    with pytest.raises(ParameterError, match="at least 1"):
        Budget(copies=0)


@pytest.mark.corpus
def test_clip_frames_are_the_clip_frames_of_the_featurizer(ravdess: list) -> None:
    from ser_engine.dsp.features import Featurizer
    from training.features import load_clip_audio, speech_window_features
    from training.seeds.data import clip_frames, seed_feature_config

    cfg = seed_feature_config("mfcc_zcr_rms")
    fz = Featurizer(cfg)
    y = load_clip_audio(ravdess[7].path, sample_rate=cfg.sample_rate)
    windows, starts = speech_window_features([y], config=cfg, featurizer=fz)
    assert windows.shape[0] >= 2  # overlapping windows (3.x s clip: 0, 0.5, the tail)
    frames = clip_frames(windows, starts, config=cfg, duration_s=y.size / cfg.sample_rate)
    whole = fz.frames(y)  # every frame of the clip, computed at once
    end = round(float(starts[-1]) * cfg.sample_rate / cfg.hop_length) + cfg.n_frames
    assert frames.shape == (end, cfg.n_features) == whole[:end].shape
    assert np.allclose(frames, whole[:end], rtol=1e-4, atol=1e-3)
    mid = y.size // 2  # 1 s of speech: one centre-padded window; only frames inside the real samples kept
    short = y[mid - cfg.sample_rate // 2 : mid + cfg.sample_rate // 2]
    w1, s1 = speech_window_features([short], config=cfg, featurizer=fz)
    f1 = clip_frames(w1, s1, config=cfg, duration_s=1.0)
    assert f1.shape[0] == 1 + (cfg.sample_rate - cfg.n_fft) // cfg.hop_length
    assert np.allclose(f1, fz.frames(short), rtol=1e-4, atol=1e-3)  # the pad starts on the frame grid here


@pytest.mark.corpus
@pytest.mark.training
@pytest.mark.slow
def test_random_search_picks_the_best_validation_trial(tiny_parts: dict[str, list[Item]]) -> None:
    from training.seeds.systems import random_search

    index = {lab: i for i, lab in enumerate(HARMONISED_LABELS)}
    x = {
        p: view(featurize_items(items=v, featurize=STANDIN), kind="sequence", n_frames=50)
        for p, v in tiny_parts.items()
    }
    y = {p: np.array([index[it.clip.label] for it in v]) for p, v in tiny_parts.items()}
    found = random_search(x=x, y=y, n_labels=7, n_trials=2, rng=np.random.default_rng(3), max_epochs=1, seed=0)
    assert [t["config"] for t in found["trials"]] == search_configs(n=2, rng=np.random.default_rng(3))
    uars = [t["val_uar"] for t in found["trials"]]
    assert found["best"] == int(np.argmax(uars))
    assert all(0.0 <= u <= 1.0 for u in uars)
    assert all(t["epochs_run"] == 1 and "history" not in t for t in found["trials"])
