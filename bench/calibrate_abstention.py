"""Calibrate how the reader's "no answer" combines with the retrieval score into an abstention.

Reads evaluation runs made with `--set reader_abstain_below=0` (the reader's verdict is recorded
as a note and never abstains), e.g.:

    python -m eval run ../shared/eval-data/arabic-qa-dev --sample 90 --set reader_abstain_below=0 --out runs/dev
    python -m eval run ../shared/eval-data/arabic-qa-dev --sample 60 --held-out --set reader_abstain_below=0 --out runs/held
    python -m eval run eval/questions/seed.jsonl --docs seeds --set reader_abstain_below=0 --out runs/seed
    python -m bench.calibrate_abstention runs/dev runs/held runs/seed

and replays the rule the pipeline runs (qa/reader.py): abstain when retrieval is weak (the run
abstained), or when the reader found no answer and the best evidence scores below T (yes/no
questions excepted). For T over a grid it reports the false abstentions on answerable questions
and the abstentions on unanswerable ones (held-out: asked with their own article removed), and
picks the T with the most unanswerable abstentions at or under 5% false abstentions.
Writes eval/calibration/abstention.json and abstention.png. Leaves out: running the questions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qa import reader

OUT = Path(__file__).resolve().parent.parent / "eval" / "calibration"
MAX_FALSE_ABSTENTIONS = 0.05  # the product target


def load(runs: list[Path]) -> list[dict]:
    """(answerable, best score, reader said no, retrieval abstained, yes/no, lang) per question."""
    rows = []
    for run in runs:
        for line in (run / "results.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            a = r.get("answer")
            if not a:
                continue
            rows.append(
                {
                    "run": run.name,
                    "answerable": not r["unanswerable"],
                    "best": r["best_score"] if r["best_score"] is not None else float("-inf"),
                    "reader_no": a.get("note") == reader.NOTES["no_answer_kept"],
                    "weak": a["abstained"],
                    "yes_no": reader.asks_yes_no(r["question"]),
                    "lang": r["lang"],
                }
            )
    return rows


def rates(rows: list[dict], threshold: float) -> tuple[float, float, int, int]:
    """(false abstention rate, unanswerable abstention rate, n answerable, n unanswerable) at T."""

    def abstains(r: dict) -> bool:
        return r["weak"] or (r["reader_no"] and not r["yes_no"] and r["best"] < threshold)

    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    fa = sum(map(abstains, ans)) / max(len(ans), 1)
    ua = sum(map(abstains, una)) / max(len(una), 1)
    return fa, ua, len(ans), len(una)


def main(argv: list[str]) -> None:
    rows = load([Path(a) for a in argv])
    grid = [round(0.3 + 0.02 * i, 2) for i in range(46)] + [10.0]
    curve = []
    for t in grid:
        fa, ua, n_ans, n_una = rates(rows, t)
        curve.append({"threshold": t, "false_abstention": round(fa, 3), "abstain_unanswerable": round(ua, 3)})
    ok = [c for c in curve if c["false_abstention"] <= MAX_FALSE_ABSTENTIONS]
    chosen = max(ok, key=lambda c: (c["abstain_unanswerable"], -c["threshold"])) if ok else None
    by_lang = {}
    if chosen:
        for lang in sorted({r["lang"] for r in rows}):
            fa, ua, n_ans, n_una = rates([r for r in rows if r["lang"] == lang], chosen["threshold"])
            by_lang[lang] = {
                "false_abstention": round(fa, 3),
                "abstain_unanswerable": round(ua, 3),
                "answerable": n_ans,
                "unanswerable": n_una,
            }
    _, _, n_ans, n_una = rates(rows, 0)
    result = {
        "runs": argv,
        "answerable": n_ans,
        "unanswerable": n_una,
        "rule": "abstain if retrieval is weak, or the reader found no answer and best evidence < T (not yes/no)",
        "retrieval_only": {
            "false_abstention": curve[0]["false_abstention"],
            "abstain_unanswerable": curve[0]["abstain_unanswerable"],
        },
        "reader_always": curve[-1],
        "chosen": chosen,
        "chosen_by_lang": by_lang,
        "curve": curve,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "abstention.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs = [c["threshold"] for c in curve[:-1]]
    ax.plot(xs, [c["false_abstention"] for c in curve[:-1]], label="false abstentions (answerable)")
    ax.plot(xs, [c["abstain_unanswerable"] for c in curve[:-1]], label="abstentions (unanswerable)")
    ax.axhline(MAX_FALSE_ABSTENTIONS, color="grey", linestyle=":", linewidth=1)
    if chosen:
        ax.axvline(
            chosen["threshold"],
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"T = {chosen['threshold']}",
        )
    ax.set_xlabel("reader abstains below this best-evidence score (T)")
    ax.set_ylabel("share of questions")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "abstention.png", dpi=110)
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
