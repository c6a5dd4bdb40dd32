"""Intervals and paired tests: how far an evaluation figure can be trusted, and whether run B beats run A.

- A rate (a share of questions: hit@1, abstentions, verified short answers) gets a Wilson score
  interval (`wilson`, scipy's `binomtest(...).proportion_ci(method="wilson")`): unlike the normal
  approximation it stays inside [0, 1] and keeps its coverage at the small counts an evaluation has
  (17 of 27 is 44-78%). Where questions share articles (at least `MIN_CLUSTERS` of them) the count
  is first divided by the design effect (`design_effect`: the cluster-robust variance of the share
  over its variance as if questions were independent, at least 1), so the interval is that of the
  effective number of independent questions (Kish's effective sample size; Korn & Graubard 1998).
- A mean of graded scores (F1, MRR) and a latency percentile get a bootstrap interval
  (`bootstrap`, scipy's `stats.bootstrap`, BCa). Questions of one article are not independent
  (they share a passage, a topic, a translator), so where a set spans at least `MIN_CLUSTERS`
  articles the bootstrap resamples whole articles (a cluster bootstrap: each article's score sum
  and question count are resampled together and the statistic is their ratio); with fewer
  articles (the seed set has one) it resamples questions.
- Two runs on the same questions are compared paired: for a rate, McNemar's exact test on the
  questions both runs scored (`mcnemar`: a two-sided binomial test of the discordant pairs,
  scipy's `binomtest`), which assumes independent questions, so where they share at least
  `MIN_CLUSTERS` articles the verdict comes from the paired bootstrap over articles instead; for a
  mean or a percentile, a paired bootstrap interval of B − A (`paired_bootstrap`). Fewer than
  `MIN_PAIRS` pairs get no verdict. `verdict` turns either into "better", "worse" or "no significant
  difference".

What we write here is only the glue scipy does not have: the cluster bootstrap's ratio statistic,
the pairing and the verdict. Leaves out: which metric is a rate or a mean (eval.metrics) and
rendering (eval.report, eval.compare).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
ALPHA = 0.05  # 1 - CONFIDENCE, written out: 1 - 0.95 is 0.050000000000000044 in floating point
# Bootstrap resamples. At 2,000 the 95% bounds of a mean of 68 values move by under 0.01 between
# seeds (tests/test_eval_stats.py measures it), under the figures' second decimal.
RESAMPLES = 2000
SEED = 20261202  # fixed: a report made twice from the same results gives the same intervals
# Fewer articles than this and a cluster bootstrap has too few units to resample (with 2 or 3 the
# resampled sets are nearly all repeats of one article): questions are resampled instead.
MIN_CLUSTERS = 8
# Fewer pairs than this and a paired bootstrap's interval is the spread of 2-9 numbers: no verdict.
MIN_PAIRS = 10


def _finite(values: Sequence[float], what: str = "values") -> list[float]:
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite numbers (no NaN or infinity)")
    return out


def _check_groups(values: Sequence, groups: Sequence | None) -> None:
    if groups is not None and len(groups) != len(values):
        raise ValueError(f"{len(groups)} groups for {len(values)} values")


def wilson(k: int, n: int, *, confidence: float = CONFIDENCE) -> tuple[float, float] | tuple[None, None]:
    """The Wilson score interval (no continuity correction) of `k` successes in `n` trials.

    Returns (low, high) in [0, 1], or (None, None) when n == 0.
    Example: wilson(81, 263) == (0.2553..., 0.3662...)  (Newcombe 1998, Table I)
    """
    if n == 0:
        return None, None
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} successes out of n = {n}")
    ci = sps.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    p = k / n
    return max(0.0, min(p, float(ci.low))), min(1.0, max(p, float(ci.high)))


def design_effect(values: Sequence[float], groups: Sequence[str] | None) -> float:
    """How much clustering inflates the variance of the mean of `values` (0/1 or graded): the
    cluster-robust (linearised ratio) variance over the variance as if every value were independent,
    at least 1. 1 when there are fewer than `MIN_CLUSTERS` clusters or no variance.

    Example: 10 articles whose questions all agree within an article: about the article size.
    """
    grouped = _grouped(values, groups)
    if grouped is None:
        return 1.0
    sums, counts = grouped
    n, g = counts.sum(), len(counts)
    mean = sums.sum() / n
    xs = np.asarray(values, dtype=float)
    iid = xs.var(ddof=1) / n if len(xs) > 1 else 0.0
    if iid <= 0:
        return 1.0
    robust = g / (g - 1) * np.sum((sums - mean * counts) ** 2) / n**2
    return max(1.0, float(robust / iid))


def _grouped(values: Sequence[float], groups: Sequence[str] | None) -> list[np.ndarray] | None:
    """Per-cluster (sums, counts) when there are at least MIN_CLUSTERS clusters, else None."""
    if groups is None or len(set(groups)) < MIN_CLUSTERS:
        return None
    index: dict[str, int] = {}
    ids = np.array([index.setdefault(g, len(index)) for g in groups])
    sums = np.bincount(ids, weights=np.asarray(values, dtype=float))
    counts = np.bincount(ids).astype(float)
    return [sums, counts]


def _ratio(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sum(sums, axis=axis) / np.sum(counts, axis=axis)


def _run_bootstrap(
    data: list[np.ndarray], statistic: Callable, *, paired: bool
) -> tuple[float, float] | None:
    """scipy's BCa bootstrap, falling back to the percentile method when BCa is undefined
    (a statistic that does not vary under the jackknife gives NaN bounds)."""
    rng = np.random.default_rng(SEED)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning: handled by the fallback
            res = sps.bootstrap(
                data,
                statistic,
                paired=paired,
                vectorized=True,
                n_resamples=RESAMPLES,
                confidence_level=CONFIDENCE,
                method=method,
                random_state=rng,
            )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (math.isnan(low) or math.isnan(high)):
            return low, high
    return None


def bootstrap(
    values: Sequence[float], *, groups: Sequence[str] | None = None, q: float | None = None
) -> tuple[float, float] | tuple[None, None]:
    """A 95% bootstrap interval of the mean of `values` (or of their `q`-th percentile, 0-100).

    `groups` names each value's cluster (its article): with at least `MIN_CLUSTERS` of them, the
    mean's interval resamples whole clusters. Percentiles always resample values (latency depends
    on the machine, not the article). Returns (None, None) for fewer than 2 values; (v, v) when
    every value is the same.
    """
    values = _finite(values)
    _check_groups(values, groups)
    if len(values) < 2:
        return None, None
    if len(set(values)) == 1:
        return values[0], values[0]
    if q is not None:
        got = _run_bootstrap(
            [np.asarray(values)], lambda x, axis=-1: np.percentile(x, q, axis=axis), paired=False
        )
    elif (grouped := _grouped(values, groups)) is not None:
        got = _run_bootstrap(grouped, _ratio, paired=True)
    else:
        got = _run_bootstrap([np.asarray(values)], lambda x, axis=-1: np.mean(x, axis=axis), paired=False)
    return got if got else (None, None)


def summary(values: Sequence[float | None], *, kind: str, groups: Sequence[str | None] | None = None) -> dict:
    """{"value", "low", "high", "n", "clusters"} of the non-None `values`: a rate (0/1 values,
    `kind="rate"`, Wilson, on the effective count when `groups` holds at least `MIN_CLUSTERS`
    articles) or a mean (`kind="mean"`, bootstrap over `groups` as in `bootstrap`). `clusters`: the
    number of articles the interval resampled or adjusted for, None when questions were treated as
    independent. Value and bounds are None when nothing applies.
    """
    _check_groups(values, groups)
    kept = [
        (float(v), g) for v, g in zip(values, groups or [None] * len(values), strict=True) if v is not None
    ]
    n = len(kept)
    if not n:
        return {"value": None, "low": None, "high": None, "n": 0, "clusters": None}
    xs = _finite([v for v, _ in kept])
    value = sum(xs) / n
    gs = [g for _, g in kept] if groups is not None and all(g is not None for _, g in kept) else None
    clusters = len(set(gs)) if gs is not None and len(set(gs)) >= MIN_CLUSTERS else None
    if kind == "rate":
        if any(x not in (0.0, 1.0) for x in xs):
            raise ValueError("a rate's values must be 0 or 1")
        n_eff = n / design_effect(xs, gs)
        low, high = _wilson_real(value * n_eff, n_eff)
    elif kind == "mean":
        low, high = bootstrap(xs, groups=gs)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return {"value": value, "low": low, "high": high, "n": n, "clusters": clusters}


def _wilson_real(k: float, n: float, z: float = float(sps.norm.ppf(1 - ALPHA / 2))) -> tuple[float, float]:
    """Wilson's interval written out, for a non-integer (effective) count; equals `wilson` for
    integers (tests/test_eval_stats.py checks it)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n)))
    # Rounding can put a bound a hair past p when p is 0 or 1 (1e-17): the interval always holds p.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def percentile_summary(values: Sequence[float], q: float) -> dict:
    """{"value", "low", "high", "n"}: the `q`-th percentile (numpy's linear interpolation, the same
    as `eval.metrics.percentile`) with its bootstrap interval."""
    if len(values) == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    values = _finite(values)
    low, high = bootstrap(values, q=q)
    return {"value": float(np.percentile(values, q)), "low": low, "high": high, "n": len(values)}


# ---------------------------------------------------------------------------------------------
# Paired comparisons


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """McNemar's exact test of two paired 0/1 outcomes (the same questions, runs A and B).

    Returns {"n": pairs, "a_only": A 1 and B 0, "b_only": A 0 and B 1, "p_value": two-sided exact
    p (1.0 when no pair differs)}. Example: 10 pairs where only B is 1 and 2 where only A is,
    p = 2 * P(X <= 2 | 12, 0.5) = 0.0386.
    """
    if len(a) != len(b):
        raise ValueError("paired outcomes need the same number of questions")
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    discordant = a_only + b_only
    p = sps.binomtest(a_only, discordant, 0.5).pvalue if discordant else 1.0
    return {"n": len(a), "a_only": a_only, "b_only": b_only, "p_value": float(min(1.0, p))}


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    groups: Sequence[str] | None = None,
    q: float | None = None,
) -> dict:
    """B − A of the mean (or of the `q`-th percentile) over paired values, with a paired bootstrap
    95% interval (clusters resampled whole as in `bootstrap`).

    Returns {"diff", "low", "high", "n"}; bounds None for fewer than `MIN_PAIRS` pairs.
    """
    if len(a) != len(b):
        raise ValueError("paired values need the same number of questions")
    _check_groups(a, groups)
    xa, xb = np.asarray(_finite(a), dtype=float), np.asarray(_finite(b), dtype=float)
    n = len(xa)
    if n == 0:
        return {"diff": None, "low": None, "high": None, "n": 0}
    if q is not None:
        diff = float(np.percentile(xb, q) - np.percentile(xa, q))

        def statistic(x, y, axis=-1):
            return np.percentile(y, q, axis=axis) - np.percentile(x, q, axis=axis)

        data = [xa, xb]
    else:
        diff = float(np.mean(xb - xa))
        grouped = _grouped(list(xb - xa), groups)
        if grouped is not None:
            data, statistic = grouped, _ratio
        else:
            data = [xb - xa]

            def statistic(d, axis=-1):
                return np.mean(d, axis=axis)

    if n < MIN_PAIRS:  # too few pairs for an interval that means anything
        return {"diff": diff, "low": None, "high": None, "n": n}
    if all(len(set(np.round(d, 12))) == 1 for d in ([xb - xa] if q is None else [xa, xb])):
        return {"diff": diff, "low": diff, "high": diff, "n": n}
    got = _run_bootstrap(data, statistic, paired=True)
    low, high = got if got else (None, None)
    return {"diff": diff, "low": low, "high": high, "n": n}


def verdict(
    *,
    p_value: float | None = None,
    low: float | None = None,
    high: float | None = None,
    diff: float | None,
    higher_is_better: bool = True,
) -> str:
    """ "better", "worse" or "no significant difference" (at 95%) for B against A.

    A rate decides by McNemar's `p_value` < 0.05 and the sign of `diff`; a mean by whether its
    interval [low, high] excludes 0. "–" when nothing can be said (no pairs, no interval).
    """
    if diff is None or math.isnan(diff) or (p_value is not None and math.isnan(p_value)):
        return "–"
    if p_value is not None:
        significant = p_value < ALPHA
    elif low is not None and high is not None:
        significant = low > 0 or high < 0
    else:
        return "–"
    if not significant or diff == 0:
        return "no significant difference"
    return "better" if (diff > 0) == higher_is_better else "worse"
