"""Compare two runs: per-metric differences with a paired test for every system both ran, and the
questions that flipped.

Each metric is compared on the questions both runs scored (paired, so the questions' own
difficulty cancels): B − A with a paired bootstrap 95% interval, the latency p50 by a paired
bootstrap of the difference of medians, and for a rate McNemar's exact test (eval/stats.py). Where
the questions span at least `stats.MIN_CLUSTERS` articles, the bootstrap resamples articles, and a
rate's change is called only when McNemar's test (which assumes independent questions) and that
bootstrap (which is too sure when few pairs differ) both call it. Each row says "better", "worse" or "no significant difference" at 95%; under
`stats.MIN_PAIRS` pairs a mean gets no verdict. A question is paired only when both runs asked it
the same way (same text, answerable in both or in neither): a run and its held-out twin are not
compared. Runs whose commits or settings differ say how; a run with replies cut at the time cap is
named, since its differences may be the machine's. A question is *right* when an answerable one is
answered with a citation overlapping its gold span (citation recall > 0) and an unanswerable one is
abstained on. Writes compare.md and compare.json.
Leaves out: corrections for testing many metrics at once (some 25 rows, several correlated, such
as hit@1/3/5: about one "better" or "worse" by chance when nothing changed; read a lone verdict
with that in mind).
"""

from __future__ import annotations

import json
from pathlib import Path

from eval import metrics, stats
from eval.report import _right
from qa.errors import InputError

# Settings that name where a run wrote its files, not how it answered: not reported as differences.
_WHERE = {
    "chroma_path",
    "collection",
    "feedback_path",
    "conversations_path",
    "translations_path",
    "models_dir",
}


def load_run(folder: Path) -> tuple[dict, dict[str, dict[str, dict]]]:
    """metrics.json and the per-question records (system -> id -> record) of one run folder.

    Raises `InputError` when the folder is not a run or its files cannot be read.
    """
    folder = Path(folder)
    path = folder / "metrics.json"
    if not path.is_file():
        raise InputError(f"{folder} is not a run folder (no metrics.json); run `python -m eval run` first.")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        records: dict[str, dict[str, dict]] = {}
        for system in result["systems"]:
            file = folder / ("results.jsonl" if system == "ours" else f"results-{system}.jsonl")
            lines = file.read_text(encoding="utf-8").splitlines() if file.is_file() else []
            records[system] = {r["id"]: r for r in map(json.loads, filter(None, lines))}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"{folder} is not a readable run folder ({type(exc).__name__} in its files)."
        ) from None
    return result, records


def differences(a: dict, b: dict) -> list[str]:
    """How run B was made differently from run A: commit, question set, sampling, settings."""
    ra, rb = a.get("run") or {}, b.get("run") or {}
    out = [
        f"{key}: {ra.get(key)} → {rb.get(key)}"
        for key in ("commit", "questions", "sample", "held_out", "mode", "k")
        if ra.get(key) != rb.get(key)
    ]
    sa, sb = ra.get("all_settings") or {}, rb.get("all_settings") or {}
    for key in sorted((set(sa) | set(sb)) - _WHERE):
        if sa.get(key) != sb.get(key):
            out.append(f"{key}: {sa.get(key)} → {sb.get(key)}")
    return out


def _same_question(a: dict, b: dict) -> bool:
    return a.get("question") == b.get("question") and bool(a.get("unanswerable")) == bool(
        b.get("unanswerable")
    )


def paired_row(metric: str, ra: dict[str, dict], rb: dict[str, dict], shared: list[str]) -> dict:
    """One metric of one system, A against B on the questions both scored.

    {"metric", "n", "a", "b", "diff", "low", "high", "clusters", "test", "p_value", "verdict"}:
    a and b are the means over the paired questions, low/high the paired bootstrap interval of
    B − A; a rate adds McNemar's p and its discordant pairs (a_only, b_only).
    """
    pairs = [
        (va, vb, ra[i].get("doc"))
        for i in shared
        if (va := metrics.score_of(ra[i], metric)) is not None
        and (vb := metrics.score_of(rb[i], metric)) is not None
    ]
    row = {"metric": metric, "n": len(pairs), "a": None, "b": None, "diff": None, "low": None, "high": None}
    row.update(clusters=None, test=None, p_value=None, verdict="–")
    if not pairs:
        return row
    xa, xb, docs = zip(*pairs)
    row["a"], row["b"] = sum(xa) / len(xa), sum(xb) / len(xb)
    row["diff"] = row["b"] - row["a"]
    better = metric not in metrics.LOWER_IS_BETTER
    groups = list(docs) if all(docs) else None
    clustered = groups is not None and len(set(groups)) >= stats.MIN_CLUSTERS
    boot = stats.paired_bootstrap(xa, xb, groups=groups)
    row.update(low=boot["low"], high=boot["high"], clusters=len(set(groups)) if clustered else None)
    by_interval = stats.verdict(low=boot["low"], high=boot["high"], diff=row["diff"], higher_is_better=better)
    if metric in metrics.RATES:
        test = stats.mcnemar([x == 1 for x in xa], [x == 1 for x in xb])
        row.update(p_value=test["p_value"], a_only=test["a_only"], b_only=test["b_only"])
        by_test = stats.verdict(p_value=test["p_value"], diff=row["diff"], higher_is_better=better)
        if clustered:
            # McNemar's p is too small when questions of one article move together, and a bootstrap
            # over few discordant pairs is too sure (5 of 5 one way: interval off zero, exact p 0.06):
            # a change is called only when both say so.
            agree = by_test == by_interval
            row.update(
                test="McNemar exact and paired bootstrap over articles",
                verdict=by_test if agree else "no significant difference",
            )
        else:
            row.update(test="McNemar exact", verdict=by_test)
    else:
        row.update(
            test="paired bootstrap over articles" if clustered else "paired bootstrap", verdict=by_interval
        )
    return row


def latency_row(stage: str, ra: dict[str, dict], rb: dict[str, dict], shared: list[str]) -> dict | None:
    """The p50 of a timed stage (ms), A against B on the questions both timed (paired bootstrap of B − A)."""
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
        "low": boot["low"],
        "high": boot["high"],
        "clusters": None,
        "test": "paired bootstrap",
        "p_value": None,
        "verdict": stats.verdict(
            low=boot["low"], high=boot["high"], diff=boot["diff"], higher_is_better=False
        ),
    }


def compare(run_a: Path, run_b: Path) -> dict:
    """For every system both runs have: each metric A against B with its paired test and verdict,
    and the questions that went right→wrong and wrong→right.

    Raises `InputError` when a folder is not a run, the runs share no system, or they share no
    question asked the same way.
    """
    a, recs_a = load_run(run_a)
    b, recs_b = load_run(run_b)
    out = {"a": str(run_a), "b": str(run_b), "warnings": [], "differences": differences(a, b), "systems": {}}
    if Path(run_a).resolve() == Path(run_b).resolve():
        out["warnings"].append("A and B are the same run: every difference is zero by construction.")
    for name, run in (("A", a), ("B", b)):
        out["warnings"] += [f"Run {name}: {w}" for w in run.get("warnings", [])]
    for system in [s for s in a["systems"] if s in b["systems"]]:
        ra, rb = recs_a[system], recs_b[system]
        common = [i for i in ra if i in rb and ra[i].get("answer") and rb[i].get("answer")]
        shared = [i for i in common if _same_question(ra[i], rb[i])]
        if not shared:
            raise InputError(
                f"The two runs share no question asked the same way ({len(common)} ids in common); "
                "compare runs of one question set, both answerable or both held out."
            )
        if len(shared) < len(common):
            out["warnings"].append(
                f"{system}: {len(common) - len(shared)} of {len(common)} questions with the same id were asked "
                "differently (other text, or answerable in one run only) and are left out."
            )
        rows = [paired_row(m, ra, rb, shared) for m in metrics.SCORED]
        rows += [r for stage in ("retrieve", "reader", "total") if (r := latency_row(stage, ra, rb, shared))]
        ma, mb = a["systems"][system]["overall"], b["systems"][system]["overall"]
        counts = [
            {"metric": key, "a": ma.get(key, 0), "b": mb.get(key, 0), "diff": mb.get(key, 0) - ma.get(key, 0)}
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
        out["systems"][system] = {
            "metrics": rows,
            "counts": counts,
            "shared_questions": len(shared),
            "questions": [len(ra), len(rb)],
            **flips,
        }
    if not out["systems"]:
        raise InputError("The two runs share no system to compare.")
    return out


def to_markdown(diff: dict) -> str:
    """The comparison as Markdown: warnings, differences, one table of paired tests per system,
    flipped questions."""
    lines = [f"# Compare: A = {diff['a']}, B = {diff['b']}", ""]
    lines += [f"> **Warning.** {w}" for w in diff.get("warnings", [])]
    if diff.get("warnings"):
        lines.append("")
    if diff.get("differences"):
        lines += ["How B was made differently from A: " + "; ".join(diff["differences"]) + ".", ""]
    lines += [
        "Paired on the questions both runs asked the same way: B − A with its 95% interval (a paired "
        "bootstrap, over articles when the questions span enough of them) and, for rates, McNemar's exact p "
        "with the discordant pairs (A only, B only). The verdict is at 95% (none for a mean under "
        f'{stats.MIN_PAIRS} pairs); with this many metrics, about one says "better" or "worse" by chance '
        "when nothing changed.",
        "",
    ]
    for system, d in diff["systems"].items():
        total = " and ".join(str(x) for x in d.get("questions", []))
        lines += [f"## {system} ({d['shared_questions']} shared questions, of {total})", ""]
        lines += [
            "| metric | n | A | B | B − A [95%] | McNemar p (A only, B only) | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in d["metrics"]:
            ms = r["metric"].endswith(" ms")
            interval = (
                f" [{_n(r['low'], sign=True, ms=ms)}, {_n(r['high'], sign=True, ms=ms)}]"
                if r["low"] is not None
                else ""
            )
            p = (
                f"{r['p_value']:.3f} ({r.get('a_only', 0)}, {r.get('b_only', 0)})"
                if r["p_value"] is not None
                else ""
            )
            lines.append(
                f"| {r['metric']} | {r['n']} | {_n(r['a'], ms=ms)} | {_n(r['b'], ms=ms)} | "
                f"{_n(r['diff'], sign=True, ms=ms)}{interval} | {p} | {r['verdict']} |"
            )
        lines += ["", "Counts over the whole runs (not only the shared questions):", ""]
        lines += ["| count | A | B | B − A |", "|---|---|---|---|"]
        lines += [f"| {c['metric']} | {c['a']} | {c['b']} | {c['diff']:+d} |" for c in d["counts"]]
        for key, title in (("right_to_wrong", "Right → wrong"), ("wrong_to_right", "Wrong → right")):
            lines += ["", f"### {title}: {len(d[key])}", ""]
            lines += [f"- `{q['id']}` {q['question']}" for q in d[key]]
        lines.append("")
    return "\n".join(lines)


def _n(x, *, sign: bool = False, ms: bool = False) -> str:
    if x is None:
        return "–"
    if isinstance(x, int):
        return f"{x:+d}" if sign else str(x)
    digits = 0 if ms else 3
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def write(diff: dict, out: Path) -> None:
    """compare.md and compare.json into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(to_markdown(diff), encoding="utf-8")
    (out / "compare.json").write_text(json.dumps(diff, ensure_ascii=False, indent=2), encoding="utf-8")
