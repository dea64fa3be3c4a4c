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
``ser-train encoder``   the Whisper-encoder model: cached encoder vectors, heads chosen on validation,
                        one ONNX graph, evaluation beside the old CNN (``--quick``: tiny random encoder)
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
    ss.add_argument("--dry-run", action="store_true", help="print the plan and its estimated time; train nothing")
    ss.add_argument(
        "--run-dir", type=Path, default=REPO / "training_runs" / "all", help="where results_seeds.json goes"
    )
    ss.add_argument(
        "--quick", action="store_true", help="smoke run: 2 clips per corpus, part and label, 1-2 epochs, 2 trials"
    )
    ss.add_argument("--limit", type=int, default=None, help="at most this many clips per corpus, part and label")
    ss.add_argument("--copies", type=int, default=2, help="the seeds' augmented copies per RAVDESS clip")
    ss.add_argument("--search-trials", type=int, default=3, help="CNN+BiLSTM random-search configurations")
    ss.add_argument("--max-epochs", type=int, default=20, help="CNN+BiLSTM epoch limit on RAVDESS")
    ss.add_argument("--max-epochs-all", type=int, default=12, help="CNN+BiLSTM epoch limit on all training corpora")
    ss.add_argument("--max-epochs-cnn1d", type=int, default=5, help="1D CNN epoch limit")
    ss.add_argument("--leak-cnn1d", action="store_true", help="the 1D CNN in the leak table too (about 2 h more at 2x)")
    sn = sub.add_parser("encoder", help="the Whisper-encoder model (vectors, heads, ONNX, evaluation, report)")
    sn.add_argument("--quick", action="store_true", help="smoke run: tiny random encoder, 1 clip per corpus, part "
                    "and label (not for shipping)")
    sn.add_argument("--run-dir", type=Path, default=None, help="log, results.json, staging (default "
                    "training_runs/encoder, or training_runs/encoder-quick)")
    sn.add_argument("--out-dir", type=Path, default=None, help="where model.onnx and model.json go (default "
                    "RUN_DIR/model; never models/ unless given)")
    sn.add_argument("--docs", type=Path, default=None, help="where encoder_results.json/.md go (default docs/, "
                    "or RUN_DIR with --quick)")
    sn.add_argument("--card", type=Path, default=None, help="model card to write (default "
                    "models/MODEL_CARD.md, or RUN_DIR/MODEL_CARD.md with --quick)")
    sn.add_argument("--compare-with", type=Path, default=None, metavar="MODEL_DIR",
                    help="the earlier model the tables put beside the new one, e.g. the log-mel CNN of an older "
                    "commit (default: models/ at git HEAD)")
    return p


def _encoder(args: argparse.Namespace) -> int:
    """``ser-train encoder``: run :func:`training.encoder.run.run_encoder`."""
    from training.encoder.run import run_encoder
    from training.pipeline import REPO, _portable

    run_dir = args.run_dir or REPO / "training_runs" / ("encoder-quick" if args.quick else "encoder")
    docs = args.docs or (run_dir if args.quick else REPO / "docs")
    card = args.card or (run_dir if args.quick else REPO / "models") / "MODEL_CARD.md"
    results = run_encoder(
        root=args.data,
        run_dir=run_dir,
        out_dir=args.out_dir,
        docs_dir=docs,
        card_path=card,
        cache_dir=args.cache_dir,
        workers=args.workers,
        quick=args.quick,
        old_model_dir=args.compare_with,
        command="ser-train encoder" + (" --quick" if args.quick else "")
        + (f" --compare-with {_portable(args.compare_with)}" if args.compare_with else ""),
    )
    print(f"wrote {results['model_dir']}/model.onnx and model.json, {docs}/encoder_results.md, {card}")
    return 0


def _seeds(args: argparse.Namespace) -> int:
    """``ser-train seeds``: print the plan (``--dry-run``) or run it."""
    from training.seeds.run import Budget, estimate, format_plan, make_plan, prepare_parts, run_seeds

    try:
        if args.quick:
            budget = Budget(
                copies=1,
                max_epochs=2,
                patience=1,
                max_epochs_all=1,
                patience_all=1,
                max_epochs_cnn1d=1,
                patience_cnn1d=1,
                search_trials=2,
                leak_cnn1d=args.leak_cnn1d,
                limit=args.limit or 2,
            )
        else:
            budget = Budget(
                copies=args.copies,
                max_epochs=args.max_epochs,
                max_epochs_all=args.max_epochs_all,
                max_epochs_cnn1d=args.max_epochs_cnn1d,
                search_trials=args.search_trials,
                leak_cnn1d=args.leak_cnn1d,
                limit=args.limit,
            )
    except ValueError as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        plan = make_plan(budget)
        parts = prepare_parts(root=args.data, budget=budget)
        print(format_plan(estimate_=estimate(plan=plan, parts=parts), budget=budget), end="")
        return 0
    argv = " ".join(sys.argv[1:]) if sys.argv[1:] else "seeds"
    run_seeds(
        root=args.data,
        run_dir=args.run_dir,
        budget=budget,
        workers=args.workers,
        cache_dir=args.cache_dir,
        command=f"ser-train {argv}" + (" --quick" if args.quick and "--quick" not in argv else ""),
    )
    print("ser-train report adds the Seed systems section to docs/results.md")
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
            seeds_path = args.run_dir / "results_seeds.json"
            if seeds_path.is_file():  # `ser-train seeds` results: the Seed systems section
                results["seeds"] = json.loads(seeds_path.read_text(encoding="utf-8"))
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
            return _seeds(args)
        if args.command == "encoder":
            return _encoder(args)
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
