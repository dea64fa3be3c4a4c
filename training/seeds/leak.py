"""The three split protocols of the leak table, over a corpus's clip list.

The seed projects scored their models on RAVDESS with shortcuts that let the
test set share speakers, or even recordings, with the training set. The same
model and features are scored three ways here:

``random``
    The seeds' split: clips shuffled and cut (stratified by emotion), so every
    actor has clips on both sides. Augmented copies, if any, are made from the
    training clips after the split.
``augment_before_split``
    Seed 003: every clip's augmented copies are made *first* and the random
    split is drawn over the copies, so copies of one recording land on both
    sides (the test set holds near-duplicates of training items).
``speaker_independent``
    Our protocol: the committed speaker split (:mod:`training.splits`); no
    speaker is on two sides; augmented copies of training clips only.

Every protocol returns the same three parts, ``train`` / ``val`` / ``test``
(the validation part is what early stopping watches; it is drawn with the
same protocol as the test part), each a list of :class:`Item` (a clip and
the number of its augmented copy, 0 for the recording itself). Identifiers
are ``<corpus>:<path in the corpus folder>`` for a recording (:func:`clip_id`)
and ``<corpus>:<path>#aug<k>`` for its k-th augmented copy. All randomness comes from an explicit
``numpy.random.Generator``: the same seed gives the same parts.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser_engine.errors import ParameterError
from training.corpora import Clip

__all__ = [
    "PARTS",
    "PROTOCOLS",
    "Item",
    "augment_before_split",
    "clip_id",
    "item_rng",
    "part_ids",
    "protocol_split",
    "random_split",
    "shared_clips",
    "shared_speakers",
    "speaker_independent_split",
]

PROTOCOLS: tuple[str, ...] = ("random", "augment_before_split", "speaker_independent")
"""The protocols of the leak table, most leaky first."""
PARTS: tuple[str, ...] = ("train", "val", "test")


def clip_id(clip: Clip) -> str:
    """``<corpus>:<path in the corpus folder without extension>``, e.g. ``ravdess:Actor_12/03-01-05-01-01-01-12``.

    The folders are part of it because file names alone repeat in some corpora
    (CASIA: ``<speaker>/<emotion>/201.ogg``). A path outside a folder named after
    its corpus gives ``<corpus>:<file stem>``.
    """
    parts = Path(clip.path).with_suffix("").parts
    if clip.corpus in parts[:-1]:
        k = len(parts) - 1 - parts[::-1].index(clip.corpus)
        return f"{clip.corpus}:{'/'.join(parts[k + 1 :])}"
    return f"{clip.corpus}:{parts[-1]}"


@dataclass(frozen=True)
class Item:
    """One training or test example: a recording or one of its augmented copies.

    Attributes
    ----------
    clip : Clip
    copy : int
        0 for the recording itself, ``k >= 1`` for its k-th augmented copy.
    """

    clip: Clip
    copy: int = 0

    @property
    def id(self) -> str:
        """``<corpus>:<path>`` or ``<corpus>:<path>#aug<k>`` (:func:`clip_id`)."""
        base = clip_id(self.clip)
        return base if self.copy == 0 else f"{base}#aug{self.copy}"


def item_rng(item: Item, *, seed: int) -> np.random.Generator:
    """Return the generator that makes ``item``'s augmented copy: a function of the item id and ``seed`` only.

    The same copy is therefore identical whichever protocol or part it lands in.
    """
    return np.random.default_rng([seed, zlib.crc32(item.id.encode("utf-8"))])


def _unique(clips: Iterable[Clip]) -> list[Clip]:
    out = list(clips)
    ids = [clip_id(c) for c in out]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ParameterError(f"clip id {dup} is not unique in the clip list")
    return out


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0.0 <= val_fraction < 1.0 and 0.0 < test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ParameterError(f"fractions val {val_fraction} and test {test_fraction} must be >= 0 and sum below 1")


def _stratified(
    items: Sequence[Item], *, fine: bool, val_fraction: float, test_fraction: float, rng: np.random.Generator
) -> dict[str, list[Item]]:
    """Cut each label's items (in a seeded random order) into test, val and train."""
    by_label: dict[str, list[Item]] = {}
    for it in items:
        by_label.setdefault(it.clip.fine_label if fine else it.clip.label, []).append(it)
    parts: dict[str, list[Item]] = {p: [] for p in PARTS}
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda it: it.id)
        order = [group[i] for i in rng.permutation(len(group))]
        n_test = round(test_fraction * len(group))
        n_val = round(val_fraction * len(group))
        parts["test"] += order[:n_test]
        parts["val"] += order[n_test : n_test + n_val]
        parts["train"] += order[n_test + n_val :]
    return {p: sorted(v, key=lambda it: it.id) for p, v in parts.items()}


def _with_copies(items: Iterable[Item], copies: int) -> list[Item]:
    return [Item(it.clip, k) for it in items for k in range(copies + 1)]


def random_split(
    *,
    clips: Iterable[Clip],
    rng: np.random.Generator,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    copies: int = 0,
    fine: bool = False,
) -> dict[str, list[Item]]:
    """Make the seeds' random clip split, stratified by emotion; augmentation after the split.

    Parameters
    ----------
    clips : iterable of Clip
        One corpus's clips (RAVDESS for the leak table).
    rng : numpy.random.Generator
    test_fraction, val_fraction : float
        Share of each label's clips in the test and validation parts (0.2 and
        0.1: the seeds' 80/20 cut with a tenth of the clips kept for early stopping).
    copies : int
        Augmented copies per *training* clip (``Item.copy`` 1..copies).
    fine : bool
        Stratify by the corpus's own label (RAVDESS: 8 classes) instead of the harmonised one.

    Returns
    -------
    dict of str to list of Item
        ``train``, ``val``, ``test``, each sorted by id; val and test hold recordings only.
    """
    _check_fractions(val_fraction, test_fraction)
    parts = _stratified(
        [Item(c) for c in _unique(clips)], fine=fine, val_fraction=val_fraction, test_fraction=test_fraction, rng=rng
    )
    parts["train"] = _with_copies(parts["train"], copies)
    return parts


def augment_before_split(
    *,
    clips: Iterable[Clip],
    rng: np.random.Generator,
    copies: int = 2,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    fine: bool = False,
) -> dict[str, list[Item]]:
    """Seed 003's protocol: make ``copies`` augmented copies of every clip, then split the items at random.

    The recording and its copies are ``copies + 1`` items drawn independently,
    so a recording usually has items on two sides (with 2 copies and 70 % of
    the items in training, about 1 - 0.3² = 91 % of the test items have a
    sibling in training).

    Parameters
    ----------
    clips : iterable of Clip
    rng : numpy.random.Generator
    copies : int
        Augmented copies per clip (seed 003: noise and pitch shift, 2), at least 1.
    test_fraction, val_fraction : float
        Share of each label's items in test and validation.
    fine : bool
        Stratify by the corpus's own label.

    Returns
    -------
    dict of str to list of Item
        ``train``, ``val``, ``test``, each sorted by id.
    """
    if copies < 1:
        raise ParameterError("augment_before_split needs at least one augmented copy per clip")
    _check_fractions(val_fraction, test_fraction)
    items = _with_copies((Item(c) for c in _unique(clips)), copies)
    return _stratified(items, fine=fine, val_fraction=val_fraction, test_fraction=test_fraction, rng=rng)


def speaker_independent_split(
    *, clips: Iterable[Clip], split: Mapping[str, Any] | None = None, copies: int = 0
) -> dict[str, list[Item]]:
    """Our protocol: the committed speaker split (``training/splits/speakers.json``).

    Parameters
    ----------
    clips : iterable of Clip
    split : mapping, optional
        A split as :func:`training.splits.load_split` returns it (default: the committed one).
    copies : int
        Augmented copies per training clip.

    Returns
    -------
    dict of str to list of Item
        ``train``, ``val``, ``test`` (RAVDESS: 16 / 4 / 4 actors), each sorted by id.

    Raises
    ------
    training.splits.SplitError
        A clip's speaker is not in the split, or belongs to a held-out corpus.
    """
    from training.splits import SplitError, assign, load_split

    chosen = load_split() if split is None else dict(split)
    assigned = assign(clips=_unique(clips), split=chosen)
    held = [c for p in ("unseen_val", "unseen_test") for c in assigned[p]]
    if held:
        raise SplitError(f"{held[0].path}: corpus {held[0].corpus} is held out of training; no split protocol applies")
    parts = {p: sorted((Item(c) for c in assigned[p]), key=lambda it: it.id) for p in PARTS}
    parts["train"] = _with_copies(parts["train"], copies)
    return parts


def protocol_split(
    protocol: str,
    *,
    clips: Iterable[Clip],
    rng: np.random.Generator,
    copies: int = 2,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    split: Mapping[str, Any] | None = None,
) -> dict[str, list[Item]]:
    """Make the parts of ``protocol`` (one of :data:`PROTOCOLS`), with ``copies`` augmented copies per clip.

    ``random`` and ``speaker_independent`` augment training clips only;
    ``augment_before_split`` augments every clip before splitting. ``rng`` is
    not used by ``speaker_independent`` (its split is committed).
    """
    if protocol == "random":
        return random_split(clips=clips, rng=rng, test_fraction=test_fraction, val_fraction=val_fraction, copies=copies)
    if protocol == "augment_before_split":
        return augment_before_split(
            clips=clips, rng=rng, copies=copies, test_fraction=test_fraction, val_fraction=val_fraction
        )
    if protocol == "speaker_independent":
        return speaker_independent_split(clips=clips, split=split, copies=copies)
    raise ParameterError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def part_ids(parts: Mapping[str, Sequence[Item]]) -> dict[str, list[str]]:
    """Item identifiers per part."""
    return {p: [it.id for it in items] for p, items in parts.items()}


def _pairs(parts: Mapping[str, Sequence[Item]], key: Any, a: str, b: str) -> set[str]:
    return {key(it) for it in parts[a]} & {key(it) for it in parts[b]}


def shared_speakers(parts: Mapping[str, Sequence[Item]], *, a: str = "train", b: str = "test") -> set[str]:
    """Speakers with items in both part ``a`` and part ``b``."""
    return _pairs(parts, lambda it: it.clip.speaker, a, b)


def shared_clips(parts: Mapping[str, Sequence[Item]], *, a: str = "train", b: str = "test") -> set[str]:
    """Find the recordings (clip ids) with items (the recording or a copy) in both part ``a`` and part ``b``."""
    return _pairs(parts, lambda it: clip_id(it.clip), a, b)
