"""The quality table: one command that reproduces the README's headline quality figures, with intervals.

`python -m eval quality` (or `make quality`) makes three runs with the shipped settings and pools
them per figure:
- `dev`: the dev benchmark's every-4th-question sample (`--sample 90`: 68 questions, 41 Arabic,
  27 English, from 17 of its 18 articles, all indexed), answerable: retrieval, spans, short
  answers, false abstentions;
- `held`: its every-5th sample asked with each question's own article removed from the index
  (`--sample 60 --held-out`: 55 questions), all unanswerable: abstention;
- `seed`: the seed set on the seed article (68 questions, 16 unanswerable, 12 follow-ups).
Each figure is given per question language with its 95% interval and count (eval/stats.py), beside
its target; the runs' own folders keep their reports. The risk–coverage curves of abstention and of
the short answer's check are drawn over the three runs pooled (answerable and unanswerable
questions together). Writes quality.md, quality.json and risk_coverage.png.
Leaves out: the runs themselves (eval.runner) and latency (bench/bench_reader.py: quality does not
depend on speed, except that a reply cut at the time cap is counted as no short answer, so the
table warns when that happened).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from eval import compare, metrics, report, runner, selective
from eval import questions as qset
from qa.config import PROJECT_DIR

DEV = PROJECT_DIR.parent / "shared" / "eval-data" / "arabic-qa-dev"
SEED_SET = PROJECT_DIR / "eval" / "questions" / "seed.jsonl"
SEEDS = PROJECT_DIR / "seeds"
DEV_SAMPLE, HELD_SAMPLE = 90, 60  # every 4th and every 5th question (the samples of the earlier figures)

BOTH, EN = ("en", "ar"), ("en",)
# (label, metric, runs pooled, target as text, target value, higher is better, languages it applies to)
FIGURES = (
    ("retrieval R@1 (gold in the first passage)", "hit@1", ("dev",), "≥ 0.90", 0.90, True, BOTH),
    ("span F1 of the short answer", "span_f1", ("dev",), "≥ 0.65", 0.65, True, BOTH),
    ("checked short answer in the question's language, right", "short_right", ("dev", "seed"), "≥ 0.70 (English)", 0.70, True, EN),
    ("verified short answers (the rules passed) that are wrong", "checked_wrong", ("dev", "held", "seed"), "≤ 0.05", 0.05, False, BOTH),
    ("checked (certified) short answer shown: coverage", "short_checked", ("dev", "seed"), "≥ 0.30 (English)", 0.30, True, BOTH),
    ("checked (certified) short answers that are wrong", "certified_wrong", ("dev", "held", "seed"), "≤ 0.05", 0.05, False, BOTH),
    ("unanswerable questions abstained", "abstain_unanswerable", ("held", "seed"), "≥ 0.85", 0.85, True, BOTH),
    ("false abstentions (answerable)", "false_abstention", ("dev", "seed"), "≤ 0.05", 0.05, False, BOTH),
    ("replies cut at the time cap", "timed_out", ("dev", "held", "seed"), "0", 0.0, False, BOTH),
)  # fmt: skip
MARKS = {"met": " ✓", "missed": " ✗", "open": " ?"}


def judge(cell: dict, goal: float, *, higher: bool) -> str | None:
    """ "met" when the whole 95% interval is on the target's good side, "missed" when it is all on
    the bad side, "open" when it spans the target; None when there is no value.

    Example: judge({"value": 0.02, "low": 0.0, "high": 0.10}, 0.05, higher=False) == "open"
    """
    if cell["value"] is None:
        return None
    low, high = (cell["low"], cell["high"]) if cell["low"] is not None else (cell["value"], cell["value"])
    good = (lambda x: x >= goal) if higher else (lambda x: x <= goal)
    if good(low) and good(high):
        return "met"
    if not good(low) and not good(high):
        return "missed"
    return "open"


def run_all(
    out: Path, *, dev: Path = DEV, overrides: dict | None = None, progress: bool = True
) -> dict[str, dict]:
    """The three runs into out/dev, out/held, out/seed (the dev index kept in out/index-dev so the
    held-out run reuses it); returns each run's metrics.json content."""
    out = Path(out)
    dev_set = qset.load(dev)
    runner.warn(dev_set.problems)
    common = {"settings_overrides": overrides or {}, "progress": progress}
    index = out / "index-dev"
    results = {
        "dev": runner.run(dev_set, out=out / "dev", sample=DEV_SAMPLE, index_dir=index, **common),
        "held": runner.run(dev_set, out=out / "held", sample=HELD_SAMPLE, held_out=True, index_dir=index, **common),
        "seed": runner.run(qset.load(SEED_SET, strict=True), docs=[SEEDS], out=out / "seed", **common),
    }  # fmt: skip
    return results


def table(out: Path) -> dict:
    """The figures from the runs under `out`: {"rows": [{"figure", "metric", "runs", "target",
    "by_lang": {lang: {"value", "low", "high", "n"}}, "met": {lang: "met" | "missed" | "open" |
    None}}], "warnings", "selective": risk–coverage over the three runs pooled (eval/selective.py)}."""
    out = Path(out)
    runs_read = {name: compare.load_run(out / name) for name in ("dev", "held", "seed")}
    records = {name: list(recs["ours"].values()) for name, (_, recs) in runs_read.items()}
    rows = []
    for label, metric, runs, target, goal, higher, langs in FIGURES:
        pooled = [r for name in runs for r in records[name]]
        by_lang, met = {}, {}
        for lang in ("en", "ar"):
            part = [r for r in pooled if r["lang"] == lang]
            cell = metrics.mean_with_count(
                [metrics.score_of(r, metric) for r in part], name=metric, groups=[r.get("doc") for r in part]
            )
            by_lang[lang] = cell
            met[lang] = judge(cell, goal, higher=higher) if lang in langs else None
        rows.append(
            {
                "figure": label,
                "metric": metric,
                "runs": list(runs),
                "target": target,
                "by_lang": by_lang,
                "met": met,
            }
        )
    # Abstention is judged on answerable and unanswerable questions together: the three runs pooled.
    pooled_all = [r for name in ("dev", "held", "seed") for r in records[name]]
    warnings = []
    for name, (result, _) in runs_read.items():
        warnings += [f"{name}: {w}" for w in result.get("warnings", [])]
    return {"rows": rows, "warnings": warnings, "selective": selective.summarise(pooled_all)}


def _cell(c: dict, met: str | None) -> str:
    return report.cell_text(c, digits=2) + ("" if c["value"] is None else MARKS.get(met, ""))


def to_markdown(result: dict) -> str:
    """The table as Markdown: figure, English and Arabic questions (value [95% interval] n, and ✓
    met / ✗ missed / ? open against the target, by the whole interval), target, the runs pooled."""
    lines = ["| figure | English questions | Arabic questions | target | runs |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        en, ar = (_cell(r["by_lang"][k], r["met"][k]) for k in ("en", "ar"))
        lines.append(f"| {r['figure']} | {en} | {ar} | {r['target']} | {' + '.join(r['runs'])} |")
    lines += [
        "",
        "Value [95% interval] n. ✓: the whole interval meets the target; ✗: the whole interval misses it; "
        "?: the interval spans the target, so this sample cannot say.",
        "",
        *[f"> **Warning.** {w}" for w in result["warnings"]],
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(out: Path, *, dev: Path = DEV, overrides: dict | None = None, progress: bool = True) -> dict:
    """Run, tabulate, write out/quality.md and quality.json; returns the table with its run time (s)."""
    t0 = time.perf_counter()
    run_all(out, dev=dev, overrides=overrides, progress=progress)
    result = {**table(out), "seconds": round(time.perf_counter() - t0, 1), "overrides": overrides or {}}
    (Path(out) / "quality.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    (Path(out) / "quality.md").write_text(to_markdown(result), encoding="utf-8")
    report.risk_coverage_plot(Path(out) / "risk_coverage.png", result["selective"])
    return result
