"""Certified thresholds: Learn-then-Test (Angelopoulos, Bates, Candès, Jordan, Lei 2021) for "checked".

A decision ("this short answer is checked") is made when a calibrated score clears a threshold.
`certify` picks that threshold on a certification part the score was never fit on, so that with
probability at least 1 - delta, fewer than `alpha` of the answers the threshold accepts are wrong,
for questions like the certification part's:

1. the grid of thresholds is fixed before any data is seen (`GRID`: 1 down to 0 in steps of 0.001,
   for scores that are probabilities), strictest first;
2. testing starts at the strictest threshold that accepts enough answers to pass at all: the least n
   with binom.cdf(0, n, alpha) <= delta (45 for alpha 0.05, delta 0.1), found from the scores
   alone, so the guarantee stands;
3. at each threshold in turn, with n accepted and k of them wrong, the null "risk >= alpha" is
   rejected when p = binom.cdf(k, n, alpha) <= delta; the first threshold that fails stops the
   sequence (fixed-sequence testing controls the family-wise error at delta without correction);
4. the last threshold that passed is certified (of the bars accepting the same answers, the strictest);
   when none passes, nothing is certified, and the
   decision is never labelled checked.

scipy's binomial does the test. MAPIE's `BinaryClassificationController` (risk="precision") does the
same, but pulls a larger dependency for twenty lines, and its grid is its own.

Leaves out: fitting the score (eval.calibrators), and the per-question labels (eval.signals).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import beta, binom

ALPHA = 0.05  # the promised bound on wrong among checked (the product's target, DEVELOPERS.md)
DELTA = 0.1  # the chance the bound fails for the calibration part drawn (issue 31)


def min_accepted(alpha: float = ALPHA, delta: float = DELTA) -> int:
    """The least number of accepted answers that can pass with none wrong: binom.cdf(0, n, alpha) <= delta.

    Example: min_accepted(0.05, 0.1) == 45 (0.95**45 = 0.099).
    """
    return math.ceil(math.log(delta) / math.log(1 - alpha))


@dataclass(frozen=True)
class Certificate:
    """The outcome of `certify` for one decision and language.

    `threshold`: the certified score bar (accept when score >= threshold), None when none passed.
    `accepted` / `wrong`: at that bar, on the certification part; `n`: answers in the part;
    `p_value`: binom.cdf(wrong, accepted, alpha); `upper`: the one-sided (1 - delta) Clopper-Pearson
    bound on the wrong rate among accepted; `tested`: thresholds tested (the last one failed unless
    the grid ran out). `reason`: why nothing is certified, in one sentence, or None.
    """

    threshold: float | None
    accepted: int
    wrong: int
    n: int
    p_value: float | None
    upper: float | None
    tested: int
    alpha: float = ALPHA
    delta: float = DELTA
    reason: str | None = None

    @property
    def coverage(self) -> float:
        """Share of the part's answers the certified bar accepts (0 when nothing is certified)."""
        return self.accepted / self.n if self.n and self.threshold is not None else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "coverage": round(self.coverage, 4)}


def upper_bound(wrong: int, accepted: int, delta: float = DELTA) -> float:
    """One-sided (1 - delta) Clopper-Pearson upper bound on a rate with `wrong` of `accepted`."""
    if accepted == 0:
        return 1.0
    return 1.0 if wrong >= accepted else float(beta.ppf(1 - delta, wrong + 1, accepted - wrong))


# The thresholds tested, fixed before any data is seen: calibrated scores are probabilities, so a
# grid of 1,001 bars from 1 down to 0 in steps of 0.001.
GRID = tuple(round(1 - i / 1000, 3) for i in range(1001))


def certify(
    scores: list[float],
    wrong: list[bool],
    *,
    alpha: float = ALPHA,
    delta: float = DELTA,
    grid: tuple[float, ...] = GRID,
) -> Certificate:
    """Learn-then-Test over `grid`, strictest first (see the module docstring).

    scores[i] is the calibrated score of answer i (higher = more likely right; -inf for an answer
    the rules already refuse, never accepted); wrong[i] its label; `grid` the thresholds, fixed in
    advance, strictest (highest) first. Returns a `Certificate`.
    Raises ValueError when the two lists differ in length.
    """
    if len(scores) != len(wrong):
        raise ValueError(f"{len(scores)} scores but {len(wrong)} labels.")
    n, need = len(scores), min_accepted(alpha, delta)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    ranked = np.asarray(scores, dtype=float)[order]
    wrong_sorted = np.asarray(wrong, dtype=int)[order]
    cum_wrong = np.concatenate([[0], np.cumsum(wrong_sorted)])
    # accepted[j]: answers scoring >= grid[j] (ranked is descending: count of -ranked <= -t)
    accepted = np.searchsorted(-ranked, -np.asarray(grid, dtype=float), side="right")
    usable = np.flatnonzero(accepted >= need)  # from the scores alone: where a test can pass at all
    if len(usable) == 0:
        possible = int(np.isfinite(ranked).sum())
        return Certificate(
            None, 0, 0, n, None, None, 0, alpha, delta,
            reason=f"only {possible} answers could be accepted at all; {need} are needed to certify "
            f"fewer than {alpha:.0%} wrong at {1 - delta:.0%} confidence",
        )  # fmt: skip
    tested = grid_idx = usable
    counts = accepted[tested]
    ks = cum_wrong[counts]
    p_values = binom.cdf(ks, counts, alpha)
    failed = np.flatnonzero(p_values > delta)
    stop = failed[0] if len(failed) else len(tested)  # fixed sequence: the first failure ends it
    if stop == 0:
        return Certificate(
            None, 0, 0, n, None, None, 1, alpha, delta,
            reason=f"even the strictest bar that accepts {need} answers has too many wrong to promise "
            f"fewer than {alpha:.0%} at {1 - delta:.0%} confidence",
        )  # fmt: skip
    # Every bar that passed holds at once (with probability >= 1 - delta); of those accepting the same
    # answers as the loosest, the strictest is shipped, so a score lower than any seen is not accepted.
    last = int(np.flatnonzero(counts[:stop] == counts[stop - 1])[0])
    j, k, acc = grid_idx[last], int(ks[last]), int(counts[last])
    return Certificate(
        float(grid[j]), acc, k, n, float(p_values[last]), upper_bound(k, acc, delta),
        int(min(stop + 1, len(tested))), alpha, delta,
    )  # fmt: skip
