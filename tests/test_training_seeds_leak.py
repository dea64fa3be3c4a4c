"""The leak-table split protocols (training/seeds/leak.py) on the real RAVDESS file list."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ser_engine.errors import ParameterError
from training.corpora import load_corpus
from training.seeds.leak import (
    PROTOCOLS,
    Item,
    augment_before_split,
    clip_id,
    item_rng,
    part_ids,
    protocol_split,
    random_split,
    shared_clips,
    shared_speakers,
    speaker_independent_split,
)
from training.splits import SplitError, load_split

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def ravdess(corpus_dir: Path) -> list:
    clips, _ = load_corpus(root=corpus_dir, corpus="ravdess")
    assert len(clips) == 1440
    return clips


def test_random_split_puts_actors_on_both_sides(ravdess: list) -> None:
    parts = random_split(clips=ravdess, rng=np.random.default_rng(0))
    assert shared_speakers(parts) == {c.speaker for c in ravdess}  # all 24 actors in train and test
    assert shared_speakers(parts, a="train", b="val")
    n = {p: len(v) for p, v in parts.items()}
    assert n == {"train": 1011, "val": 6 * 19 + 29, "test": 6 * 38 + 58}  # per label: round(0.1 n), round(0.2 n)
    # stratified: each label keeps its share in test (RAVDESS neutral incl. calm 288, others 192)
    test_labels = Counter(it.clip.label for it in parts["test"])
    assert test_labels["neutral"] == round(0.2 * 288)
    assert test_labels["angry"] == round(0.2 * 192)
    # every recording in exactly one part, no copies on the held-out sides
    assert sorted(i for v in part_ids(parts).values() for i in v) == sorted(clip_id(c) for c in ravdess)
    assert not shared_clips(parts)


def test_random_split_copies_only_training_clips(ravdess: list) -> None:
    parts = random_split(clips=ravdess, rng=np.random.default_rng(0), copies=2)
    assert len(parts["train"]) == 3 * 1011
    assert {it.copy for it in parts["train"]} == {0, 1, 2}
    assert {it.copy for it in parts["test"]} == {0} == {it.copy for it in parts["val"]}
    assert not shared_clips(parts)
    assert not shared_clips(parts, a="train", b="val")


def test_speaker_independent_split_never_shares_an_actor(ravdess: list) -> None:
    parts = speaker_independent_split(clips=ravdess, copies=1)
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        assert not shared_speakers(parts, a=a, b=b)
    actors = {p: {it.clip.speaker for it in v} for p, v in parts.items()}
    assert [len(actors[p]) for p in ("train", "val", "test")] == [16, 4, 4]
    committed = load_split()["corpora"]["ravdess"]
    assert actors["test"] == set(committed["test"])
    assert actors["val"] == set(committed["val"])
    assert len(parts["test"]) == 4 * 60
    assert {it.copy for it in parts["test"]} == {0}
    assert len(parts["train"]) == 2 * 16 * 60


def test_augment_before_split_puts_copies_of_one_clip_on_both_sides(ravdess: list) -> None:
    parts = augment_before_split(clips=ravdess, rng=np.random.default_rng(0), copies=2)
    assert sum(len(v) for v in parts.values()) == 3 * 1440
    assert {it.copy for it in parts["test"]} == {0, 1, 2}  # augmented items are tested too
    leaked = shared_clips(parts)
    # with 70 % of the items in training, 1 - 0.3**2 = 91 % of test items have a sibling there
    test_clips = {clip_id(it.clip) for it in parts["test"]}
    assert 0.8 < len(leaked) / len(test_clips) <= 1.0
    example = sorted(leaked)[0]
    sides = {p for p, v in parts.items() for it in v if clip_id(it.clip) == example}
    assert {"train", "test"} <= sides
    assert shared_speakers(parts) == {c.speaker for c in ravdess}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocols_are_deterministic_for_a_seed(ravdess: list, protocol: str) -> None:
    a = part_ids(protocol_split(protocol, clips=ravdess, rng=np.random.default_rng(7)))
    b = part_ids(protocol_split(protocol, clips=list(reversed(ravdess)), rng=np.random.default_rng(7)))
    assert a == b  # same seed, same parts, whatever the order of the clip list
    if protocol != "speaker_independent":
        c = part_ids(protocol_split(protocol, clips=ravdess, rng=np.random.default_rng(8)))
        assert c["test"] != a["test"]


def test_item_ids_and_copy_generators(ravdess: list) -> None:
    clip = ravdess[0]
    assert Item(clip).id == "ravdess:Actor_01/03-01-01-01-01-01-01"
    assert Item(clip, 2).id == "ravdess:Actor_01/03-01-01-01-01-01-01#aug2"
    draw = item_rng(Item(clip, 1), seed=3).random(4)
    assert np.array_equal(draw, item_rng(Item(clip, 1), seed=3).random(4))
    assert not np.array_equal(draw, item_rng(Item(clip, 2), seed=3).random(4))


def test_bad_inputs_are_refused(ravdess: list, corpus_dir: Path) -> None:
    with pytest.raises(ParameterError, match="not unique"):
        random_split(clips=[*ravdess, ravdess[0]], rng=np.random.default_rng(0))
    with pytest.raises(ParameterError, match="fractions"):
        random_split(clips=ravdess, rng=np.random.default_rng(0), test_fraction=0.6, val_fraction=0.5)
    with pytest.raises(ParameterError, match="at least one"):
        augment_before_split(clips=ravdess, rng=np.random.default_rng(0), copies=0)
    with pytest.raises(ParameterError, match="unknown protocol"):
        protocol_split("kfold", clips=ravdess, rng=np.random.default_rng(0))
    casia, _ = load_corpus(root=corpus_dir, corpus="casia")
    with pytest.raises(SplitError, match="held out"):
        speaker_independent_split(clips=casia[:5])
