"""Compare two runs: per-metric differences for every system both ran, and the questions that flipped.

A question is *right* when an answerable one is answered with a citation overlapping its gold span
(citation recall > 0) and an unanswerable one is abstained on. Writes compare.md and compare.json.
Leaves out: statistical significance (the counts are printed so a reader can judge).
"""

from __future__ import annotations

import json
from pathlib import Path

from eval import metrics
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


def compare(run_a: Path, run_b: Path) -> dict:
    """Differences B − A for every metric, and the questions that went right→wrong and wrong→right."""
    a, recs_a = load_run(run_a)
    b, recs_b = load_run(run_b)
    out = {"a": str(run_a), "b": str(run_b), "systems": {}}
    for system in [s for s in a["systems"] if s in b["systems"]]:
        ma, mb = a["systems"][system]["overall"], b["systems"][system]["overall"]
        rows = []
        for m in metrics.SCORED:
            va, vb = ma[m]["value"], mb[m]["value"]
            diff = vb - va if va is not None and vb is not None else None
            rows.append({"metric": m, "a": va, "b": vb, "diff": diff, "n_a": ma[m]["n"], "n_b": mb[m]["n"]})
        for key in ("quote_mismatches", "cross_language_not_scored", "errors"):
            rows.append(
                {
                    "metric": key,
                    "a": ma[key],
                    "b": mb[key],
                    "diff": mb[key] - ma[key],
                    "n_a": None,
                    "n_b": None,
                }
            )
        for stage in ("retrieve", "answer", "total"):
            la, lb = (
                a["systems"][system]["latency_ms"].get(stage),
                b["systems"][system]["latency_ms"].get(stage),
            )
            if la and lb:
                rows.append(
                    {
                        "metric": f"{stage} p50 ms",
                        "a": la["p50"],
                        "b": lb["p50"],
                        "diff": lb["p50"] - la["p50"],
                        "n_a": la["n"],
                        "n_b": lb["n"],
                    }
                )
        shared = [i for i in recs_a[system] if i in recs_b[system]]
        flips = {"right_to_wrong": [], "wrong_to_right": []}
        for i in shared:
            ra, rb = recs_a[system][i], recs_b[system][i]
            if not ra.get("answer") or not rb.get("answer"):
                continue
            was, now = _right(ra), _right(rb)
            if was != now:
                flips["right_to_wrong" if was else "wrong_to_right"].append(
                    {
                        "id": i,
                        "question": rb["question"],
                        "a": ra["answer"]["answer"],
                        "b": rb["answer"]["answer"],
                    }
                )
        out["systems"][system] = {"metrics": rows, "shared_questions": len(shared), **flips}
    if not out["systems"]:
        raise InputError("The two runs share no system to compare.")
    return out


def to_markdown(diff: dict) -> str:
    """The comparison as Markdown tables and lists."""
    lines = [f"# Compare: A = {diff['a']}, B = {diff['b']}", ""]
    for system, d in diff["systems"].items():
        lines += [f"## {system} ({d['shared_questions']} shared questions)", ""]
        lines += ["| metric | A | B | B − A | n A | n B |", "|---|---|---|---|---|---|"]
        for r in d["metrics"]:
            lines.append(
                f"| {r['metric']} | {_n(r['a'])} | {_n(r['b'])} | {_n(r['diff'], sign=True)} | {r['n_a'] if r['n_a'] is not None else ''} | {r['n_b'] if r['n_b'] is not None else ''} |"
            )
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
