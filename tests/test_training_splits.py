"""The committed speaker split: disjoint, complete, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.corpora import load_all
from training.splits import (
    DEFAULT_SPLIT_PATH,
    HELD_OUT,
    PARTS,
    SplitError,
    assign,
    check_disjoint,
    load_split,
    make_speaker_split,
)


@pytest.fixture(scope="module")
def clips(corpus_dir: Path) -> list:
    return load_all(root=corpus_dir)[0]


def test_committed_split_is_speaker_disjoint() -> None:
    split = load_split()
    seen: dict[str, str] = {}
    for parts in split["corpora"].values():
        for part in PARTS:
            for spk in parts.get(part, []):
                assert spk not in seen, f"{spk} in {seen.get(spk)} and {part}"
                seen[spk] = part


@pytest.mark.corpus
def test_committed_split_covers_every_speaker_and_is_reproducible(clips: list) -> None:
    split = load_split()
    parts = assign(clips=clips, split=split)
    assert sum(len(v) for v in parts.values()) == len(clips)
    for part in PARTS:
        for other in PARTS:
            if part < other:
                assert not {c.speaker for c in parts[part]} & {c.speaker for c in parts[other]}
    # the committed file is exactly what the documented seed produces
    assert make_speaker_split(clips=clips, seed=split["seed"])["corpora"] == split["corpora"]


def test_split_policy() -> None:
    c = load_split()["corpora"]
    r = c["ravdess"]
    assert (len(r["train"]), len(r["val"]), len(r["test"])) == (16, 4, 4)
    for part in ("val", "test"):  # gender-balanced: odd actors are male
        assert sum(int(s.split(":")[1]) % 2 for s in r[part]) == 2
    assert (len(c["crema-d"]["train"]), len(c["crema-d"]["val"]), len(c["crema-d"]["test"])) == (64, 9, 18)
    tess = {p: c["tess"][p] for p in ("train", "val", "test")}
    assert tess == {"train": ["tess:OAF"], "val": [], "test": ["tess:YAF"]}
    assert [len(c["savee"][p]) for p in ("train", "val", "test")] == [2, 1, 1]


@pytest.mark.corpus
def test_held_out_corpora_are_absent_from_training_and_of_different_languages(clips: list) -> None:
    from training.corpora import CORPUS_INFO

    split = load_split()
    assert split["held_out"] == {k: list(v) for k, v in HELD_OUT.items()}
    assert len(HELD_OUT["unseen_val"]) >= 1
    assert len(HELD_OUT["unseen_test"]) >= 2
    test_languages = {CORPUS_INFO[c].language for c in HELD_OUT["unseen_test"]}
    assert len(test_languages) == len(HELD_OUT["unseen_test"])
    parts = assign(clips=clips, split=split)
    held = set(HELD_OUT["unseen_val"]) | set(HELD_OUT["unseen_test"])
    for part in ("train", "val", "test"):
        assert not {c.corpus for c in parts[part]} & held, part
    for role, names in HELD_OUT.items():
        assert {c.corpus for c in parts[role]} == set(names)
        # every clip of a held-out corpus is in its role, none elsewhere
        assert len(parts[role]) == sum(1 for c in clips if c.corpus in names)
    # every training corpus has validation and test speakers, except TESS (two speakers: train, test)
    for corpus, p in split["corpora"].items():
        if corpus in held:
            assert not (p["train"])
            assert not (p["val"])
            assert not (p["test"])
        else:
            assert p["train"], corpus
            assert p["test"], corpus
            assert p["val"] or corpus == "tess", corpus


def test_a_held_out_corpus_with_training_speakers_is_refused() -> None:
    bad = {
        "held_out": {"unseen_val": ["x"], "unseen_test": []},
        "corpora": {"x": {"train": ["x:1"], "val": [], "test": [], "unseen_val": ["x:2"], "unseen_test": []}},
    }
    with pytest.raises(SplitError, match="held out"):
        check_disjoint(bad)


def test_split_hash_is_recorded_in_the_shipped_model(shipped_model_dir: Path) -> None:
    from training.splits import split_hash

    meta = json.loads((shipped_model_dir / "model.json").read_text())
    assert meta["provenance"]["split_sha256"] == split_hash()


def test_overlap_and_unknown_speakers_are_refused(tmp_path: Path, clips: list) -> None:
    bad = {"corpora": {"x": {"train": ["x:1", "x:2"], "val": ["x:2"], "test": []}}}
    with pytest.raises(SplitError, match="x:2"):
        check_disjoint(bad)
    p = tmp_path / "s.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(SplitError):
        load_split(p)
    with pytest.raises(SplitError, match="not in the split"):
        assign(clips=clips[:3], split={"corpora": {"x": {"train": ["x:1"], "val": [], "test": []}}})
    with pytest.raises(SplitError, match="not found"):
        load_split(tmp_path / "missing.json")


def test_split_file_is_packaged_path() -> None:
    assert DEFAULT_SPLIT_PATH.parent.name == "splits"
    assert DEFAULT_SPLIT_PATH.is_file()
