"""Which retrieval signals could adjust the quote's abstention score: greedy forward selection by
cross-validation on the calibration set's fit part alone.

`python -m bench.select_abstention ANSWERABLE_RUN... --held HELD_RUN...` reads runs made with the
retrieval's signals recorded (eval.runner, since 2026-12-06) and, per question language, scores each
candidate set of qa.confidence.ABSTENTION_INPUTS by 5-fold cross-validation grouped by article on
the fit part's questions (answerable against held out): the share of held-out questions refused at
the bar that refuses 3%, 4% and 5% of the answerable ones, averaged (the tail the certified bar
lives in). It adds the best signal while the score rises by at least 0.005. The report part is never
read; `python -m eval certify-abstention … --adjust NAMES` then certifies and reports the choice.
Leaves out: nonlinear models (a gradient-boosted one did worse on the first 40 articles).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold

from eval import abstention
from qa import confidence as qconfidence

SHARES = (0.03, 0.04, 0.05)


def tail_refused(scores: np.ndarray, held: np.ndarray) -> float:
    """Mean share of held-out rows below the bars that refuse each of `SHARES` of the answerable ones."""
    answerable = scores[~held]
    return float(np.mean([(scores[held] < np.quantile(answerable, s)).mean() for s in SHARES]))


def cross_validated(rows: list[dict], features: tuple[str, ...]) -> float:
    """`tail_refused` of out-of-fold adjusted scores (the best score alone when `features` is empty)."""
    held = np.array([r["unanswerable"] for r in rows])
    groups = np.array([r["article"] for r in rows])
    scores = np.zeros(len(rows))
    for train, test in GroupKFold(5).split(rows, held, groups):
        if features:
            adjustment = abstention.fit_adjustment([rows[i] for i in train], features)
            scores[test] = [adjustment.score(rows[i]["inputs"]) for i in test]
        else:
            scores[test] = [rows[i]["inputs"]["best"] for i in test]
    return tail_refused(scores, held)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--held", type=Path, nargs="+", required=True)
    args = parser.parse_args(argv)
    rows = abstention.answerable_once(abstention.load(args.runs)) + abstention.load(args.held)
    for lang in abstention.LANGS:
        fit = [r for r in rows if r["lang"] == lang and r["part"] == "fit" and r["inputs"]]
        chosen: tuple[str, ...] = ()
        current = cross_validated(fit, chosen)
        print(f"{lang}: {len(fit)} fit-part questions; the best score alone {current:.3f}")
        while True:
            candidates = [n for n in qconfidence.ABSTENTION_INPUTS if n not in chosen]
            scored = sorted(((cross_validated(fit, (*chosen, n)), n) for n in candidates), reverse=True)
            best, name = scored[0]
            print(f"  + {name}: {best:.3f} (next: {', '.join(f'{n} {v:.3f}' for v, n in scored[1:4])})")
            if best < current + 0.005:
                break
            chosen, current = (*chosen, name), best
        print(f"{lang}: chosen {','.join(chosen) or '(none)'}, {current:.3f}")


if __name__ == "__main__":
    main()
