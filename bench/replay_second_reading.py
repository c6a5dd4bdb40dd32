"""What the second reading changes, replayed from evaluation runs that made it.

`python -m bench.replay_second_reading runs/quality/dev runs/quality/held-out runs/quality/seed`:
each run's answers record the short answer's verdict without the second reading
(`signals["checked_alone"]`) beside the shipped one (checked only when the two readings agree,
qa.reading.second_reading). Per question language this reports, with Wilson 95% intervals, the
answerable questions shown a checked short answer that is right, and the checked short answers
that are wrong, under both rules, with McNemar's exact test on the questions that differ. Writes
eval/calibration/second-reading.json.

Wrongness is `eval.metrics.short_answer_wrong`. A short answer the second reading demoted keeps its
rendering in `signals["rendering"]` (runs from 2026-12-02 on): without it, the verdict alone is
judged on the span against the Arabic golds. Leaves out: running the questions (`make quality`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eval import metrics, stats

OUT = Path(__file__).resolve().parent.parent / "eval" / "calibration" / "second-reading.json"


def _rows(run: Path) -> list[dict]:
    rows = []
    with (run / "results.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("system", "ours") == "ours" and r.get("answer"):
                rows.append(r)
    return rows


def _verdicts(r: dict) -> tuple[bool, bool, bool, bool] | None:
    """(shown checked alone, wrong alone, shown checked with agreement, wrong with agreement), or
    None when the run made no second reading for it."""
    a = r["answer"]
    short = a.get("short_answer")
    signals = a.get("signals") or {}
    if a["abstained"] or not short or "checked_alone" not in signals:
        return None
    golds = r.get("gold_answers") or []
    shipped = bool(short["verified"])
    alone = bool(signals["checked_alone"])
    wrong_shipped = r["unanswerable"] or metrics.short_answer_wrong(short, golds)
    if shipped or not alone:
        wrong_alone = wrong_shipped
    else:  # demoted: judge what would have been shown
        text = signals.get("rendering") or short["source"]["quote"]
        lang = r["lang"] if signals.get("rendering") else short["lang"]
        wrong_alone = r["unanswerable"] or metrics.short_answer_wrong(
            {**short, "text": text, "lang": lang}, golds
        )
    return alone, wrong_alone, shipped, wrong_shipped


def _cell(k: int, n: int) -> dict:
    low, high = stats.wilson(k, n)
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None, "ci95": [low, high]}


def main(argv: list[str] | None = None) -> None:
    runs = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not runs:
        raise SystemExit(__doc__.splitlines()[2].strip())
    rows = [r for run in runs for r in _rows(run)]
    out: dict = {"runs": [str(r) for r in runs]}
    for lang in sorted({r["lang"] for r in rows}):
        part = [r for r in rows if r["lang"] == lang]
        answerable = [r for r in part if not r["unanswerable"]]
        v = {id(r): _verdicts(r) for r in part}
        right = {"alone": [], "agreement": []}
        for r in answerable:
            x = v[id(r)]
            right["alone"].append(bool(x and x[0] and not x[1]))
            right["agreement"].append(bool(x and x[2] and not x[3]))
        shown = [x for x in v.values() if x]
        wrong_alone = [x[1] for x in shown if x[0]]
        wrong_agree = [x[3] for x in shown if x[2]]
        out[lang] = {
            "answerable": len(answerable),
            "second_readings": len(shown),
            "checked_right": {
                "alone": _cell(sum(right["alone"]), len(answerable)),
                "agreement": _cell(sum(right["agreement"]), len(answerable)),
                "mcnemar": stats.mcnemar(right["alone"], right["agreement"]),
            },
            "checked_wrong": {
                "alone": _cell(sum(wrong_alone), len(wrong_alone)),
                "agreement": _cell(sum(wrong_agree), len(wrong_agree)),
            },
            "agreement_rate": _cell(sum(x[2] for x in shown if x[0]), sum(x[0] for x in shown)),
        }
    OUT.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    for lang in (k for k in out if k != "runs"):
        d = out[lang]
        for what in ("checked_right", "checked_wrong"):
            a, g = d[what]["alone"], d[what]["agreement"]
            print(
                f"{lang} {what}: alone {a['k']}/{a['n']} [{a['ci95'][0]:.1%}, {a['ci95'][1]:.1%}] -> "
                f"with agreement {g['k']}/{g['n']} [{g['ci95'][0]:.1%}, {g['ci95'][1]:.1%}]"
            )
        print(
            f"{lang}: readings agree on {d['agreement_rate']['k']}/{d['agreement_rate']['n']} checked alone"
        )
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
