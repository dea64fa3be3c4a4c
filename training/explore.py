r"""Recipe exploration: short training runs scored on validation speakers only.

Used to choose the fixed parts of the ``ser-train all`` recipe (in-graph window
mean normalisation, weight EMA) before the random search. Each run trains the
2D CNN for ``epochs x windows`` from the same data and appends one JSON line
(validation UAR overall and per corpus) to ``out``. Test speakers are never
touched here.

    python -m training.explore 2 '{}' '{"ema_decay": 0.998}' \
        '{"arch_params": {"window_cmn": true}, "ema_decay": 0.998}'

The first argument is the number of augmented copies of the training audio;
every further argument is a JSON object of ``TrainConfig`` overrides
(``arch_params`` entries are merged into the default ones).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.corpora import CORPORA, HARMONISED_LABELS
from training.pipeline import DEFAULT_DATA, REPO, _keras_eval, _train_set, prepare_data
from training.train import TrainConfig, configure_tensorflow, fit_model, labels_of

__all__ = ["BASE", "explore"]

BASE = TrainConfig(
    arch="cnn2d",
    arch_params={"filters": (24, 48, 96, 128), "stem_stride": (2, 2), "dropout": 0.3},
    learning_rate=2e-3,
    epochs=8,
    windows_per_epoch=12000,
    patience=8,
)
"""The configuration every exploration run starts from."""


def explore(
    *, specs: list[dict[str, Any]], n_aug: int, out: Path, root: Path = DEFAULT_DATA, cache_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Train one model per spec and record its validation scores.

    Parameters
    ----------
    specs : list of dict
        ``TrainConfig`` overrides, one run each.
    n_aug : int
        Augmented copies of the training audio.
    out : Path
        JSON-lines file the results are appended to.

    Returns
    -------
    list of dict
        One record per spec: the spec, validation UAR overall and per corpus, minutes.
    """
    configure_tensorflow()
    data = prepare_data(root=root, n_aug=n_aug, cache_dir=cache_dir)
    train, y_train = _train_set(data)
    y_val = labels_of(data.clips["val"], labels=HARMONISED_LABELS)
    records = []
    for spec in specs:
        params = {**BASE.arch_params, **spec.get("arch_params", {})}
        cfg = replace(BASE, **{**{k: v for k, v in spec.items() if k != "arch_params"}, "arch_params": params})
        t0 = time.perf_counter()
        model, hist = fit_model(
            cfg=cfg,
            train=train,
            y_train=y_train,
            val=data.clean["val"],
            y_val=y_val,
            labels=HARMONISED_LABELS,
            mean=data.mean,
            std=data.std,
            feature_config=data.config,
        )
        res, *_ = _keras_eval(model, data, "val", labels=HARMONISED_LABELS)
        rec = {
            "spec": spec,
            "n_aug": n_aug,
            "val_uar": round(res["all"]["uar"], 4),
            **{c: round(res[c]["uar"], 4) for c in CORPORA if c in res},
            "best_epoch_val_uar": round(hist["best_val_uar"], 4),
            "minutes": round((time.perf_counter() - t0) / 60, 1),
        }
        records.append(rec)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)
    return records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.explore", description=__doc__.split("\n\n")[0])
    p.add_argument("n_aug", type=int)
    p.add_argument("specs", nargs="+", help="JSON TrainConfig overrides, one run each")
    p.add_argument("--out", type=Path, default=REPO / "training_runs" / "explore" / "results.jsonl")
    a = p.parse_args(argv)
    explore(specs=[json.loads(s) for s in a.specs], n_aug=a.n_aug, out=a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
