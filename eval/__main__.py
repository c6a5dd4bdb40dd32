"""The evaluation command line: `python -m eval run | compare | calibrate | quality | signals | certify | certify-abstention | losses`.

An edge of the system: `QAError`s become one sentence on stderr and exit code 2, never a traceback.
Leaves out: the work itself (runner.py, compare.py, report.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from qa.cli import run_command
from qa.errors import InputError


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eval", description="Run question sets against the assistant.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="ask a question set, score it, write results, metrics and a report")
    _common(p)
    p.add_argument("--mode", default="extractive", help="answer mode: extractive (default) or generative")
    p.add_argument("--workers", type=int, default=1, help="questions asked in parallel threads")
    p.add_argument(
        "--baseline",
        action="append",
        choices=["naive", "bm25"],
        default=[],
        help="also run a baseline (repeatable)",
    )
    p.add_argument("--no-report", action="store_true", help="write results and metrics only")
    p.add_argument(
        "--part",
        choices=["fit", "certify", "report", "all"],
        help="a calibration part of the set, by article (a third each: eval.questions.part_of), article by article",
    )
    p.add_argument(
        "--articles",
        metavar="START:END",
        help="with --part: only the articles ranked START to END in its order, and only their files indexed",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start anew: without it a run resumes from OUT/journal.jsonl, asking only what is not answered",
    )
    p.add_argument("--sample", type=int, help="about N questions spread evenly over the set")
    p.add_argument(
        "--held-out",
        action="store_true",
        help="ask each question with its own document removed from the index (all unanswerable)",
    )
    p.set_defaults(func=_run)

    p = sub.add_parser("calibrate", help="pick the abstention threshold with the best balanced accuracy")
    _common(p)
    p.set_defaults(func=_calibrate)

    p = sub.add_parser(
        "quality",
        help="the README's quality table: dev sample, its held-out twin and the seed set, with 95%% intervals",
        description="Make three runs with the shipped settings (the dev benchmark's sample, the same sample "
        "asked with each question's article removed, and the seed set; about 30 minutes on 2 cores), "
        "overwriting OUT, and print the quality table with 95% intervals.",
    )
    p.add_argument(
        "--dev", type=Path, help="the arabic-qa-dev folder (default: ../shared/eval-data/arabic-qa-dev)"
    )
    p.add_argument(
        "--out", type=Path, default=Path("runs") / "quality", help="output folder (default: runs/quality)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. llm_timeout_s=600 on a busy machine so no reply is cut",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_quality)

    p = sub.add_parser(
        "signals",
        help="add a run's compact labelled signals to eval/calibration/signals.jsonl (also mid-run)",
        description="Read RUN/journal.jsonl (or results.jsonl) and merge one line per answered question "
        "(the short answer's calibration features, whether the rules passed, the label) into the "
        "committed signals file, keyed by the backend, model and reader prompt the settings name.",
    )
    p.add_argument("run", type=Path, help="a run folder")
    p.add_argument("--to", type=Path, help="the signals file (default: eval/calibration/signals.jsonl)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the run's settings")
    p.set_defaults(func=_signals)

    p = sub.add_parser(
        "certify",
        help="fit the checked score on the fit part, certify its bar per language on the other (Learn-then-Test)",
        description="Fit the short answer's calibrator on the signals of the 'fit' part and certify a bar per "
        "question language on the 'certify' part (the 'report' part is left for reporting; fewer than 5%% wrong among checked, at 90%% confidence), "
        "for the backend, model and reader prompt the settings name; write it to qa/calibrations.json.",
    )
    p.add_argument("--signals", type=Path, help="the signals file (default: eval/calibration/signals.jsonl)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. llm_backend=openai")
    p.add_argument("--dry-run", action="store_true", help="print the certificate, write nothing")
    p.set_defaults(func=_certify)

    p = sub.add_parser(
        "certify-abstention",
        help="certify the quote's abstention bar per language (fewer than 5%% of answerable questions refused)",
        description="Read runs of the calibration set (asked normally, and --held-out ones), certify per question "
        "language the highest bar on the best evidence score that refuses fewer than 5%% of answerable questions at "
        "90%% confidence (fit and certify parts), and report what it refuses on the report part (eval/abstention.py). "
        "Writes eval/calibration/abstention-certified.json and .png.",
    )
    p.add_argument("runs", type=Path, nargs="+", help="run folders asked normally (answerable questions)")
    p.add_argument("--held", type=Path, nargs="+", default=[], help="run folders asked with --held-out")
    p.add_argument(
        "--reader", type=Path, nargs="+", default=[],
        help="run folders made with the short answer on: the whole pipeline's false abstentions at each bar",
    )  # fmt: skip
    p.add_argument(
        "--adjust", default="", metavar="SIGNALS",
        help="adjust the best score by these retrieval signals (comma-separated names of "
        "qa.confidence.ABSTENTION_INPUTS, e.g. sim2,hit_score), fitted on the fit part; the bar is then "
        "certified on the certify part alone",
    )  # fmt: skip
    p.add_argument(
        "--adjust-on", type=Path, nargs="+", default=None, metavar="RUN",
        help="fit the adjustment on these run folders of other articles (asked normally and --held-out, e.g. "
        "the dev set's) instead of the fit part; the fit and certify parts then certify together",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the certificate, write nothing")
    p.set_defaults(func=_certify_abstention)

    p = sub.add_parser(
        "losses",
        help="where the gold answer is lost (passage, sentence, citation), per language and source",
        description="Ask every answerable question with the quote only (no LLM) and file it under the "
        "stage that lost its gold span; with --variant, the same questions under other settings, "
        "compared paired with the first. Writes losses.json and losses.md (eval/losses.py).",
    )
    p.add_argument("questions", type=Path, help="an arabic-qa-dev layout folder (or any question set)")
    p.add_argument("--docs", type=Path, nargs="+", default=[], help="documents or folders to index")
    p.add_argument(
        "--part", choices=["fit", "certify", "report"], help="only this part of the set's articles"
    )
    p.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="with --part: only this fixed share of its articles (chosen by a hash of the id)",
    )
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--articles", type=int, help="only the first N articles and their questions (a slice)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/losses-<time>)")
    p.add_argument("--index", type=Path, help="keep and reuse the index in this folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="also ask under these overrides, compared with the first variant asked (repeatable)",
    )
    p.add_argument(
        "--before",
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="ask first under these overrides (the settings before a change), the others compared with it",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_losses)

    p = sub.add_parser(
        "compare", help="paired tests per metric (better / worse / no difference) and flipped questions"
    )
    p.description = (
        "Pair two runs of the same question set: each metric B - A with its 95% interval, McNemar's exact "
        "test for rates, and a verdict (better / worse / no significant difference)."
    )
    p.add_argument("run_a", type=Path, help="the run folder to compare against (A)")
    p.add_argument("run_b", type=Path, help="the run folder compared (B)")
    p.add_argument("--out", type=Path, help="where to write compare.md/json (default: into RUN_B's folder)")
    p.set_defaults(func=_compare)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("questions", type=Path, help=".jsonl/.yaml/.csv, SQuAD .json, or an arabic-qa-dev folder")
    p.add_argument("--docs", type=Path, nargs="+", default=[], help="documents or folders to index")
    p.add_argument("--k", type=int, help="passages per answer (default: the setting)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/<time>)")
    p.add_argument("--limit", type=int, help="only the first N questions (and what they follow)")
    p.add_argument("--strict", action="store_true", help="stop at the first malformed question")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    p.add_argument(
        "--index", type=Path, help="keep and reuse the index in this folder (default: a temp folder)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects KEY=VALUE, got {pair!r}.")
        out[key.strip()] = value.strip()
    return out


def _load(args):
    from eval import questions, runner

    qs = questions.load(args.questions, strict=args.strict)
    runner.warn(qs.problems)
    out = args.out or Path("runs") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return qs, out


def _run(args) -> int:
    from eval import report, runner

    qs, out = _load(args)
    result = runner.run(
        qs,
        docs=args.docs,
        out=out,
        mode=args.mode,
        k=args.k,
        limit=args.limit,
        workers=max(1, args.workers),
        baselines=tuple(dict.fromkeys(args.baseline)),
        settings_overrides=_overrides(args.set),
        index_dir=args.index,
        progress=not args.quiet,
        report=not args.no_report,
        sample=args.sample,
        held_out=args.held_out,
        fresh=args.fresh,
        part=args.part,
        articles=_articles(args.articles, args.part),
    )
    head = (
        "hit@1",
        "hit@5",
        "mrr",
        "citation_precision",
        "citation_recall",
        "f1",
        "abstain_unanswerable",
        "false_abstention",
        "span_f1",
        "short_verified",
        "wrong_but_shown",
    )
    for w in result.get("warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    print(f"{'metric':22} " + " ".join(f"{system:>26}" for system in result["systems"]))
    for h in head:
        cells = [summary["overall"][h] for summary in result["systems"].values()]
        print(f"{h:22} " + " ".join(f"{report.cell_text(c):>26}" for c in cells))
    print("(value [95% interval] n=count)")
    mism = result["systems"]["ours"]["overall"]["quote_mismatches"]
    print(f"quote/offset mismatches (ours): {mism}")
    print(f"wrote {out}/results.jsonl, metrics.json" + ("" if args.no_report else ", report.md, report.html"))
    return 0


def _quality(args) -> int:
    from eval import quality

    t0 = dt.datetime.now()
    result = quality.main(
        args.out, dev=args.dev or quality.DEV, overrides=_overrides(args.set), progress=not args.quiet
    )
    print(quality.to_markdown(result))
    minutes = (dt.datetime.now() - t0).total_seconds() / 60
    print(f"wrote {args.out / 'quality.md'}, quality.json and the three runs' reports ({minutes:.1f} min)")
    return 0


def _calibrate(args) -> int:
    from eval import runner

    qs, out = _load(args)
    result = runner.calibrate(
        qs,
        docs=args.docs,
        out=out,
        k=args.k,
        limit=args.limit,
        settings_overrides=_overrides(args.set),
        index_dir=args.index,
        progress=not args.quiet,
    )
    print(
        f"best abstention threshold: {result['threshold']:.4f} "
        f"(balanced accuracy {result['balanced_accuracy']:.3f}: abstains on {result['abstains_unanswerable']}/"
        f"{result['n_unanswerable']} unanswerable, answers {result['answers_answerable']}/{result['n_answerable']} answerable)"
    )
    print(
        f"current threshold {result['current_threshold']:.4f}: balanced accuracy "
        f"{result['current_balanced_accuracy']:.3f}; set QA_ABSTAIN_THRESHOLD={result['threshold']:.4f} to use it"
    )
    for lang, row in result["by_language"].items():
        var = "QA_ABSTAIN_THRESHOLD_AR" if lang == "ar" else "QA_ABSTAIN_THRESHOLD"
        print(
            f"  {lang} questions: best {row['threshold']:.4f} (balanced accuracy {row['balanced_accuracy']:.3f}, "
            f"abstains {row['abstains_unanswerable']}, answers {row['answers_answerable']}); current "
            f"{row['current_threshold']:.4f} ({row['current_balanced_accuracy']:.3f}): {var}={row['threshold']:.4f}"
        )
    print(f"plot: {out / 'calibration.png'}")
    return 0


def _articles(text: str | None, part: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    start, sep, end = text.partition(":")
    if not part or not sep or not start.isdigit() or not end.isdigit() or int(start) >= int(end):
        raise InputError(f"--articles expects START:END (e.g. 0:40) with --part, got {text!r}.")
    return int(start), int(end)


def _key(pairs: list[str]) -> str:
    from qa.confidence import calibration_key
    from qa.config import Settings

    try:
        settings = Settings(**_overrides(pairs))
    except ValueError as exc:
        raise InputError(f"Invalid --set value: {exc.errors()[0]['msg']}.") from None
    return calibration_key(settings)


def _signals(args) -> int:
    from eval import signals

    if not (args.run / "journal.jsonl").exists() and not (args.run / "results.jsonl").exists():
        raise InputError(f"{args.run} holds no journal.jsonl or results.jsonl: is it a run folder?")
    key = _key(args.set)
    rows = signals.extract(args.run, key=key)
    added, replaced = signals.merge(rows, args.to or signals.SIGNALS)
    shown = sum(r["shown"] for r in rows)
    print(f"{len(rows)} questions ({shown} with a verified short answer) from {args.run}: {added} added, "
          f"{replaced} replaced in {args.to or signals.SIGNALS} under {key}")  # fmt: skip
    return 0


def _certify(args) -> int:
    from eval import calibrators, signals

    key = _key(args.set)
    rows = signals.load(args.signals or signals.SIGNALS)
    mine = [r for r in rows if r["key"] == key]
    if not mine:
        raise InputError(
            f"No signals under {key}: run the calibration set with these settings first (docs/evaluation.md)."
        )
    entry = calibrators.build(rows, key)
    print(f"{key}: {entry['measured_on']}")
    for bar in entry["bars"]:
        if bar["threshold"] is None:
            print(f"  {bar['decision']} {bar['lang']}: nothing certified: {bar['reason']}")
        else:
            print(
                f"  {bar['decision']} {bar['lang']}: bar {bar['threshold']:.4f}, checks {bar['accepted']}/{bar['n']} "
                f"({bar['coverage']:.0%}), {bar['wrong']} wrong, bound {bar['upper']:.3f} at {1 - bar['delta']:.0%}"
            )
    if not args.dry_run:
        calibrators.write(key, entry)
        png = Path("eval") / "calibration" / "checked.png"
        calibrators.plot(rows, key, entry, png)
        print(f"wrote qa/calibrations.json and {png}")


def _certify_abstention(args) -> int:
    from eval import abstention
    from qa.config import get_settings

    for run in [*args.runs, *args.held, *args.reader, *(args.adjust_on or [])]:
        if not (run / "journal.jsonl").exists() and not (run / "results.jsonl").exists():
            raise InputError(f"{run} holds no journal.jsonl or results.jsonl: is it a run folder?")
    answerable, held = abstention.load(args.runs), abstention.load(args.held)
    if not any(r["unanswerable"] for r in held) and args.held:
        raise InputError("The --held runs hold no held-out question: were they made with --held-out?")
    settings = get_settings()
    current = {"ar": settings.abstain_threshold_ar, "en": settings.abstain_threshold}
    adjust = tuple(name for name in args.adjust.split(",") if name)
    try:
        entry = abstention.build(
            answerable,
            held,
            current,
            reader=abstention.load(args.reader),
            adjust=adjust,
            adjust_on=None if args.adjust_on is None else abstention.load(args.adjust_on),
        )
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    print(entry["measured_on"])
    for lang, info in entry["languages"].items():
        cert = info["certificate"]
        if cert["threshold"] is None:
            print(f"  {lang}: nothing certified: {cert['reason']}")
            continue
        print(
            f"  {lang}: bar {cert['threshold']:.3f} refuses {cert['refused']}/{cert['n']} answerable "
            f"(bound {cert['upper']:.3f} at {1 - cert['delta']:.0%}, questions clustered by article); "
            f"today's bar {info['current_bar']}"
        )
        for name in ("certified", "current"):
            rep = info.get(name, {}).get("report")
            if rep:
                fa, ua = rep["false_abstentions"], rep["unanswerable_abstained"]
                every = info[name]["held_out_all_parts"]
                print(
                    f"    {name} on the report part: false abstentions {fa['k']}/{fa['n']}, "
                    f"held-out abstained {ua['k']}/{ua['n']} (every part that chose nothing: {every['k']}/{every['n']})"
                )
            pipe = info.get(name, {}).get("with_reader", {}).get("report")
            if pipe:
                print(f"    {name}, with the reader's abstentions: false abstentions {pipe['k']}/{pipe['n']}")
    if not args.dry_run:
        path = abstention.OUT / "abstention-certified.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entry, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        abstention.plot(answerable, held, entry, path.with_suffix(".png"))
        abstention.write_bars(entry)
        print(f"wrote {path}, {path.with_suffix('.png')} and the bars into {abstention.CALIBRATIONS}")
    return 0


def _losses(args) -> int:
    from eval import losses, questions, runner

    qs = questions.load(args.questions)
    runner.warn(qs.problems)
    if args.part:
        qs = losses.only_part(qs, args.part, fraction=args.fraction)
    if args.articles:
        qs = losses.only_articles(qs, args.articles)
    qs = qs.limit(args.limit)
    if not qs.questions:
        raise InputError(f"{args.questions} has no questions in the part or slice asked for.")
    base = _overrides(args.set)
    variants = {}
    if args.before is not None:
        variants["before"] = {**base, **_overrides([p for p in args.before.split(",") if p.strip()])}
    variants["shipped"] = base
    for spec in args.variant:
        name, sep, pairs = spec.partition(":")
        if not sep or not name.strip():
            raise InputError(f"--variant expects NAME:KEY=VALUE[,KEY=VALUE], got {spec!r}.")
        variants[name.strip()] = {**base, **_overrides([p for p in pairs.split(",") if p.strip()])}
    out = args.out or Path("runs") / dt.datetime.now().strftime("losses-%Y%m%d-%H%M%S")
    losses.main(qs, out=out, variants=variants, docs=args.docs, index_dir=args.index, progress=not args.quiet)
    print((out / "losses.md").read_text(encoding="utf-8"))
    print(f"wrote {out / 'losses.md'} and losses.json")
    return 0


def _compare(args) -> int:
    from eval import compare

    diff = compare.compare(args.run_a, args.run_b)
    out = args.out or args.run_b
    compare.write(diff, out)
    print(compare.to_markdown(diff))
    print(f"wrote {out / 'compare.md'} and compare.json")
    json.dumps(diff)  # fail loudly here, not in a reader, if something is not serialisable
    return 0


if __name__ == "__main__":
    sys.exit(main())
