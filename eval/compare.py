"""Compare two runs: per-metric differences with a paired test for every system both ran, and the
questions that flipped.

Each metric is compared on the questions both runs scored (paired, so the questions' own
difficulty cancels): a rate by McNemar's exact test, a mean by a paired bootstrap interval of
B − A (resampling articles where the set has enough of them), the latency p50 by a paired bootstrap
of the difference of medians (eval/stats.py). Each row says "better", "worse" or "no difference"
at 95%; a run with replies cut at the time cap is named, since its differences may be the machine's.
A question is *right* when an answerable one is answered with a citation overlapping its gold span
(citation recall > 0) and an unanswerable one is abstained on. Writes compare.md and compare.json.
Leaves out: corrections for testing many metrics at once (18 tests at 95% give about one
"difference" by chance when nothing changed: read a single verdict with that in mind).
"""

from __future__ import annotations

import json
from pathlib import Path

from eval import metrics, stats
from eval.report import _right
from qa.errors import InputError


def load_run(folder: Path) -> tuple[dict, dict[str, dict[str, dict]]]:
    """metrics.json and the per-question records (system -> id -> record) of one run folder."""
    folder = Path(folder)
    path = folder / "metrics.json"
    if not path.is_file():
        raise InputError(f"{folder} is not a run folder (no metrics.json); run `python -m eval run` first.")
    result = json.loads(path.read_text(encoding="utf-8"))
    records: dict[str, dict[str, dict]] = {}
    for system in result["systems"]:
        name = "results.jsonl" if system == "ours" else f"results-{system}.jsonl"
        lines = (folder / name).read_text(encoding="utf-8").splitlines() if (folder / name).is_file() else []
        records[system] = {r["id"]: r for r in map(json.loads, filter(None, lines))}
    return result, records


def paired_row(metric: str, ra: dict[str, dict], rb: dict[str, dict], shared: list[str]) -> dict:
    """One metric of one system, A against B on the questions both scored.

    {"metric", "a", "b", "diff", "n", "test", "p_value", "low", "high", "verdict"}: a and b are
    the means over the paired questions; a rate carries McNemar's p, a mean the paired bootstrap
    interval of B − A.
    """
    pairs = [
        (va, vb, ra[i].get("doc"))
        for i in shared
        if (va := metrics.score_of(ra[i], metric)) is not None
        and (vb := metrics.score_of(rb[i], metric)) is not None
    ]
    row = {"metric": metric, "n": len(pairs), "a": None, "b": None, "diff": None}
    row.update(test=None, p_value=None, low=None, high=None, verdict="–")
    if not pairs:
        return row
    xa, xb, docs = zip(*pairs)
    row["a"], row["b"] = sum(xa) / len(xa), sum(xb) / len(xb)
    row["diff"] = row["b"] - row["a"]
    better = metric not in metrics.LOWER_IS_BETTER
    if metric in metrics.RATES:
        test = stats.mcnemar([x == 1 for x in xa], [x == 1 for x in xb])
        row.update(
            test="McNemar exact", p_value=test["p_value"], a_only=test["a_only"], b_only=test["b_only"]
        )
        row["verdict"] = stats.verdict(p_value=test["p_value"], diff=row["diff"], higher_is_better=better)
    else:
        groups = list(docs) if all(docs) else None
        boot = stats.paired_bootstrap(xa, xb, groups=groups)
        row.update(test="paired bootstrap", low=boot["low"], high=boot["high"])
        row["verdict"] = stats.verdict(
            low=boot["low"], high=boot["high"], diff=row["diff"], higher_is_better=better
        )
    return row


def latency_row(stage: str, ra: dict[str, dict], rb: dict[str, dict], shared: list[str]) -> dict | None:
    """The p50 of a timed stage, A against B on the questions both timed (paired bootstrap of B − A)."""
    pairs = [
        (ta, tb)
        for i in shared
        if (ta := ((ra[i].get("answer") or {}).get("timings_ms") or {}).get(stage)) is not None
        and (tb := ((rb[i].get("answer") or {}).get("timings_ms") or {}).get(stage)) is not None
    ]
    if not pairs:
        return None
    xa, xb = zip(*pairs)
    boot = stats.paired_bootstrap(xa, xb, q=50)
    return {
        "metric": f"{stage} p50 ms",
        "n": len(pairs),
        "a": metrics.percentile(list(xa), 50),
        "b": metrics.percentile(list(xb), 50),
        "diff": boot["diff"],
        "test": "paired bootstrap",
        "p_value": None,
        "low": boot["low"],
        "high": boot["high"],
        "verdict": stats.verdict(
            low=boot["low"], high=boot["high"], diff=boot["diff"], higher_is_better=False
        ),
    }


def compare(run_a: Path, run_b: Path) -> dict:
    """For every system both runs have: each metric A against B with its paired test and verdict,
    and the questions that went right→wrong and wrong→right. Raises `InputError` when a folder is
    not a run or the runs share no system."""
    a, recs_a = load_run(run_a)
    b, recs_b = load_run(run_b)
    out = {"a": str(run_a), "b": str(run_b), "warnings": [], "systems": {}}
    for name, run in (("A", a), ("B", b)):
        out["warnings"] += [f"Run {name}: {w}" for w in run.get("warnings", [])]
    for system in [s for s in a["systems"] if s in b["systems"]]:
        ra, rb = recs_a[system], recs_b[system]
        shared = [i for i in ra if i in rb and ra[i].get("answer") and rb[i].get("answer")]
        rows = [paired_row(m, ra, rb, shared) for m in metrics.SCORED]
        rows += [r for stage in ("retrieve", "reader", "total") if (r := latency_row(stage, ra, rb, shared))]
        ma, mb = a["systems"][system]["overall"], b["systems"][system]["overall"]
        counts = [
            {"metric": key, "a": ma[key], "b": mb[key], "diff": mb[key] - ma[key]}
            for key in ("quote_mismatches", "cross_language_not_scored", "errors")
        ]
        flips = {"right_to_wrong": [], "wrong_to_right": []}
        for i in shared:
            was, now = _right(ra[i]), _right(rb[i])
            if was != now:
                flips["right_to_wrong" if was else "wrong_to_right"].append(
                    {
                        "id": i,
                        "question": rb[i]["question"],
                        "a": ra[i]["answer"]["answer"],
                        "b": rb[i]["answer"]["answer"],
                    }
                )
        out["systems"][system] = {"metrics": rows, "counts": counts, "shared_questions": len(shared), **flips}
    if not out["systems"]:
        raise InputError("The two runs share no system to compare.")
    return out


def to_markdown(diff: dict) -> str:
    """The comparison as Markdown: warnings, one table of paired tests per system, flipped questions."""
    lines = [f"# Compare: A = {diff['a']}, B = {diff['b']}", ""]
    lines += [f"> **Warning.** {w}" for w in diff.get("warnings", [])]
    if diff.get("warnings"):
        lines.append("")
    lines += [
        "Paired on the questions both runs answered: rates by McNemar's exact test (p), means and the "
        "latency p50 by a paired bootstrap 95% interval of B − A. The verdict is at 95%; with this many "
        'metrics, about one in twenty says "better" or "worse" by chance when nothing changed.',
        "",
    ]
    for system, d in diff["systems"].items():
        lines += [f"## {system} ({d['shared_questions']} shared questions)", ""]
        lines += ["| metric | n | A | B | B − A | test | verdict |", "|---|---|---|---|---|---|---|"]
        for r in d["metrics"]:
            if r["p_value"] is not None:
                test = f"p = {r['p_value']:.3f} ({r.get('a_only', 0)} A only, {r.get('b_only', 0)} B only)"
            elif r["low"] is not None:
                test = f"[{_n(r['low'], sign=True)}, {_n(r['high'], sign=True)}]"
            else:
                test = "–"
            lines.append(
                f"| {r['metric']} | {r['n']} | {_n(r['a'])} | {_n(r['b'])} | {_n(r['diff'], sign=True)} | {test} | {r['verdict']} |"
            )
        lines += ["", "| count | A | B | B − A |", "|---|---|---|---|"]
        lines += [f"| {c['metric']} | {c['a']} | {c['b']} | {c['diff']:+d} |" for c in d["counts"]]
        for key, title in (("right_to_wrong", "Right → wrong"), ("wrong_to_right", "Wrong → right")):
            lines += ["", f"### {title}: {len(d[key])}", ""]
            lines += [f"- `{q['id']}` {q['question']}" for q in d[key]]
        lines.append("")
    return "\n".join(lines)


def _n(x, *, sign: bool = False) -> str:
    if x is None:
        return "–"
    if isinstance(x, int):
        return f"{x:+d}" if sign else str(x)
    return f"{x:+.3f}" if sign else f"{x:.3f}"


def write(diff: dict, out: Path) -> None:
    """compare.md and compare.json into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(to_markdown(diff), encoding="utf-8")
    (out / "compare.json").write_text(json.dumps(diff, ensure_ascii=False, indent=2), encoding="utf-8")
