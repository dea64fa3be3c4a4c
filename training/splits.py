"""Speaker-disjoint train / validation / test splits, deterministic and committed.

The split is a list of speakers per part, per corpus, stored as JSON in
``training/splits/``. :func:`make_speaker_split` builds it from the clips with
a seeded shuffle; :func:`assign` maps clips to parts and refuses clips whose
speaker is not in the split (a corpus changed under us).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.corpora import Clip

__all__ = [
    "DEFAULT_SPLIT_PATH",
    "PARTS",
    "SplitError",
    "assign",
    "check_disjoint",
    "load_split",
    "make_speaker_split",
    "save_split",
    "split_hash",
]

PARTS = ("train", "val", "test")
DEFAULT_SPLIT_PATH = Path(__file__).resolve().parent / "splits" / "speakers.json"
DEFAULT_SEED = 20240601


class SplitError(ValueError):
    """A split is inconsistent (a speaker in two parts, an unknown speaker...)."""


def _shuffled(items: Sequence[str], rng: np.random.Generator) -> list[str]:
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def make_speaker_split(*, clips: Iterable[Clip], seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Choose the speakers of each part.

    Policy
    ------
    * RAVDESS (24 actors): 4 validation + 4 test actors, each half male / half
      female, drawn by a seeded shuffle within each gender.
    * CREMA-D (91 actors): seeded shuffle, 70 / 10 / 20 % (64 / 9 / 18).
    * TESS (2 speakers): OAF trains, YAF is held out for test (no validation
      speaker is left).
    * SAVEE (4 speakers): seeded shuffle, two train, one validation, one test.

    Parameters
    ----------
    clips : iterable of Clip
    seed : int

    Returns
    -------
    dict
        ``{"seed", "policy", "corpora": {corpus: {"train": [...], "val": [...], "test": [...]}}}``
    """
    rng = np.random.default_rng(seed)
    by_corpus: dict[str, dict[str, str | None]] = {}
    for c in clips:
        by_corpus.setdefault(c.corpus, {})[c.speaker] = c.gender
    out: dict[str, dict[str, list[str]]] = {}
    for corpus in sorted(by_corpus):
        speakers = by_corpus[corpus]
        names = sorted(speakers)
        if corpus == "ravdess":
            parts: dict[str, list[str]] = {p: [] for p in PARTS}
            for g in ("f", "m"):
                group = _shuffled([s for s in names if speakers[s] == g], rng)
                parts["val"] += group[:2]
                parts["test"] += group[2:4]
                parts["train"] += group[4:]
        elif corpus == "tess":
            parts = {
                "train": [s for s in names if s.endswith("OAF")],
                "val": [],
                "test": [s for s in names if s.endswith("YAF")],
            }
        else:
            order = _shuffled(names, rng)
            n = len(order)
            if corpus == "savee" or n < 10:
                n_val, n_test = 1, 1
            else:
                n_val, n_test = round(0.1 * n), round(0.2 * n)
            parts = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
        out[corpus] = {p: sorted(parts[p]) for p in PARTS}
    split = {
        "seed": seed,
        "policy": "speaker-disjoint; see training.splits.make_speaker_split",
        "corpora": out,
    }
    check_disjoint(split)
    return split


def check_disjoint(split: dict[str, Any]) -> None:
    """Raise :class:`SplitError` when a speaker appears in two parts."""
    seen: dict[str, str] = {}
    for corpus, parts in split["corpora"].items():
        for part in PARTS:
            for spk in parts.get(part, []):
                if spk in seen:
                    raise SplitError(f"speaker {spk} of {corpus} is in both {seen[spk]} and {part}")
                seen[spk] = part


def save_split(split: dict[str, Any], path: str | Path = DEFAULT_SPLIT_PATH) -> None:
    check_disjoint(split)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(split, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_split(path: str | Path = DEFAULT_SPLIT_PATH) -> dict[str, Any]:
    p = Path(path)
    try:
        split = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SplitError(f"{p}: split file not found (run `ser-train split`)") from exc
    except json.JSONDecodeError as exc:
        raise SplitError(f"{p}: not valid JSON ({exc})") from exc
    if not isinstance(split, dict) or "corpora" not in split:
        raise SplitError(f"{p}: not a split file (no 'corpora')")
    check_disjoint(split)
    return split


def split_hash(path: str | Path = DEFAULT_SPLIT_PATH) -> str:
    """SHA-256 of the split file's bytes (recorded in the model's provenance)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assign(*, clips: Iterable[Clip], split: dict[str, Any]) -> dict[str, list[Clip]]:
    """Map clips to ``train`` / ``val`` / ``test``.

    Raises
    ------
    SplitError
        A clip's speaker is not listed in the split.
    """
    part_of: dict[str, str] = {}
    for parts in split["corpora"].values():
        for part in PARTS:
            for spk in parts.get(part, []):
                part_of[spk] = part
    out: dict[str, list[Clip]] = {p: [] for p in PARTS}
    for c in clips:
        part = part_of.get(c.speaker)
        if part is None:
            raise SplitError(f"{c.path}: speaker {c.speaker} is not in the split")
        out[part].append(c)
    return out
