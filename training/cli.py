"""``ser-train``: reproduce the shipped model from the shared corpora.

Subcommands
-----------
``ser-train corpora``   count clips per corpus and label, list skipped files
``ser-train split``     (re)build the committed speaker split (``--force`` to overwrite)
``ser-train features``  featurize and cache all parts (and augmented copies)
``ser-train interim``   quick CNN on clean training audio, exported to ``models/``
``ser-train all``       everything: baselines, seed models, search, final model,
                        RAVDESS 8-class, calibration, export, report
``ser-train evaluate``  redo the validation choices and test evaluation of a finished `all` run
``ser-train report``    re-render the report and model card from a run's results.json
``ser-train overview``  draw the corpus overview figure (clips per emotion, durations) into docs/figures/
``ser-train seeds``     the seed projects' models under our protocol (``--dry-run``: what it will train)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from training.pipeline import DEFAULT_DATA, REPO

    p = argparse.ArgumentParser(prog="ser-train", description="Train and export the ser emotion model.")
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="folder holding the corpus folders (ravdess/, crema-d/, ... emotiontts-ko/; see docs/corpora.md)",
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default ~/.cache/ser/features)")
    p.add_argument("--workers", type=int, default=2, help="featurization processes")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("corpora", help="count clips per corpus and label; list skipped files")
    sp = sub.add_parser("split", help="build the speaker split JSON")
    sp.add_argument("--force", action="store_true", help="overwrite the committed split")
    sub.add_parser("features", help="featurize and cache everything")
    si = sub.add_parser("interim", help="quick interim model into models/")
    si.add_argument("--epochs", type=int, default=4)
    si.add_argument("--out", type=Path, default=REPO / "models")
    sa = sub.add_parser("all", help="the full pipeline that produces the shipped model and report")
    sa.add_argument("--out", type=Path, default=REPO / "models")
    sa.add_argument("--docs", type=Path, default=REPO / "docs")
    sa.add_argument("--run-dir", type=Path, default=REPO / "training_runs" / "all")
    sa.add_argument("--quick", action="store_true", help="smoke run: few clips, one epoch (not for shipping)")
    se = sub.add_parser("evaluate", help="redo the validation choices and test evaluation of a finished `all` run")
    se.add_argument("--run-dir", type=Path, default=REPO / "training_runs" / "all")
    se.add_argument("--out", type=Path, default=REPO / "models")
    se.add_argument("--docs", type=Path, default=REPO / "docs")
    se.add_argument("--quick", action="store_true", help="the run was a --quick smoke run")
    sr = sub.add_parser("report", help="re-render docs/results.md and MODEL_CARD.md from a run's results.json")
    sr.add_argument("--run-dir", type=Path, default=REPO / "training_runs" / "all")
    sr.add_argument("--out", type=Path, default=REPO / "models")
    sr.add_argument("--docs", type=Path, default=REPO / "docs")
    so = sub.add_parser("overview", help="draw the corpus overview figure (clips per emotion, clip durations)")
    so.add_argument("--out", type=Path, default=REPO / "docs" / "figures" / "corpus_overview.png", help="PNG to write")
    ss = sub.add_parser("seeds", help="the seed models under our protocol and the RAVDESS leak table")
    ss.add_argument("--dry-run", action="store_true", help="list the models x features x protocols and their size")
    ss.add_argument("--search-trials", type=int, default=10, help="CNN+BiLSTM random-search configurations")
    ss.add_argument("--copies", type=int, default=2, help="augmented copies per clip")
    ss.add_argument("--max-epochs", type=int, default=100, help="epoch limit of early stopping")
    return p


def _seeds_dry_run(*, data: Path, search_trials: int, copies: int, max_epochs: int) -> int:
    """Print the plan of ``ser-train seeds`` and its size."""
    from training.corpora import load_all
    from training.seeds import FEATURE_DIMS, TRAINING_CORPORA, format_plan, plan_size, seeds_plan
    from training.splits import assign, load_split

    clips, _ = load_all(root=data, corpora=TRAINING_CORPORA)
    parts = assign(clips=clips, split=load_split())
    total = {c: sum(1 for x in clips if x.corpus == c) for c in TRAINING_CORPORA}
    share = {c: sum(1 for x in parts["train"] if x.corpus == c) / total[c] for c in TRAINING_CORPORA}
    plan = seeds_plan(search_trials=search_trials)
    size = plan_size(
        plan=plan, clips=total, train_share=share, feature_dims=FEATURE_DIMS, copies=copies, max_epochs=max_epochs
    )
    print(format_plan(size), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``ser-train``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    from ser_engine.privacy import disable_telemetry

    disable_telemetry()  # before anything imports onnxruntime (export, quantisation, evaluation)
    args = _parser().parse_args(argv)
    from training.corpora import CorpusError, load_all
    from training.splits import DEFAULT_SPLIT_PATH, SplitError, make_speaker_split, save_split

    try:
        if args.command == "corpora":
            from training.corpora import corpus_summary, corpus_table

            summaries = corpus_summary(root=args.data)
            print(corpus_table(root=args.data, summaries=summaries), end="")
            failed = [s for s in summaries if s.error is not None]
            for s in failed:
                print(f"ser-train: {s.error}", file=sys.stderr)
            return 2 if failed else 0
        if args.command == "split":
            if DEFAULT_SPLIT_PATH.exists() and not args.force:
                print(f"{DEFAULT_SPLIT_PATH} exists; use --force to rebuild it", file=sys.stderr)
                return 1
            clips, _ = load_all(root=args.data)
            save_split(make_speaker_split(clips=clips))
            print(f"wrote {DEFAULT_SPLIT_PATH}")
            return 0
        if args.command == "features":
            from training.pipeline import prepare_data

            prepare_data(root=args.data, cache_dir=args.cache_dir, workers=args.workers)
            return 0
        if args.command == "interim":
            from training.pipeline import run_interim

            run_interim(
                root=args.data, out_dir=args.out, epochs=args.epochs, cache_dir=args.cache_dir, workers=args.workers
            )
            return 0
        if args.command == "report":
            import json

            from training.report import write_model_card, write_results

            path = args.run_dir / "results.json"
            if not path.is_file():
                print(f"ser-train: {path} not found (run `ser-train all` first)", file=sys.stderr)
                return 2
            results = json.loads(path.read_text(encoding="utf-8"))
            write_results(results=results, docs_dir=args.docs)
            write_model_card(results=results, path=args.out / "MODEL_CARD.md")
            print(f"wrote {args.docs / 'results.md'} and {args.out / 'MODEL_CARD.md'}")
            return 0
        if args.command == "evaluate":
            from training.pipeline import run_evaluate

            run_evaluate(
                root=args.data,
                out_dir=args.out,
                docs_dir=args.docs,
                run_dir=args.run_dir,
                cache_dir=args.cache_dir,
                workers=args.workers,
                quick=args.quick,
            )
            return 0
        if args.command == "overview":
            from training.overview import corpus_overview, plot_corpus_overview

            path = plot_corpus_overview(overview=corpus_overview(root=args.data), path=args.out)
            print(f"wrote {path}")
            return 0
        if args.command == "seeds":
            if not args.dry_run:
                print(
                    "ser-train: the full seeds run is not wired yet; `ser-train seeds --dry-run` lists it",
                    file=sys.stderr,
                )
                return 2
            if args.search_trials < 1 or args.copies < 1 or args.max_epochs < 1:
                print("ser-train: --search-trials, --copies and --max-epochs must be at least 1", file=sys.stderr)
                return 2
            return _seeds_dry_run(
                data=args.data, search_trials=args.search_trials, copies=args.copies, max_epochs=args.max_epochs
            )
        if args.command == "all":
            from training.pipeline import run_all

            run_all(
                root=args.data,
                out_dir=args.out,
                docs_dir=args.docs,
                run_dir=args.run_dir,
                cache_dir=args.cache_dir,
                workers=args.workers,
                quick=args.quick,
            )
            return 0
    except (CorpusError, SplitError) as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
