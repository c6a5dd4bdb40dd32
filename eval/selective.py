"""Selective prediction: risk–coverage curves, their area, and the shipped operating point.

Abstention and the short answer's check both choose which questions to answer. Answering the
questions whose confidence signal is at least t gives a coverage (the share answered) and a risk
(the share of those answered that are wrong); sweeping t traces the risk–coverage curve, and its
area (AURC, Geifman & El-Yaniv 2017: the mean risk over all coverages, lower is better; a signal
that orders every right answer before every wrong one reaches the minimum the error rate allows)
makes one number of it. AURC depends on the error rate at full coverage, so each curve also gives
E-AURC (AURC less the area a perfect ordering of the same questions would have; 0 is perfect), the
figure to compare signals measured on different questions by. What the product ships is one point,
marked on the curve with a Wilson interval on its risk. Two decisions are measured:

- **Abstention** over every question: "wrong if answered" is an unanswerable question answered, or
  an answerable one whose passage ranked first misses its gold span (hit@1 0): one criterion for
  the questions the run answered and those it abstained on, whose quote was never made. (For an
  answered question, the quote can cite another passage than the first: 6 of 62 answered dev
  questions differ between the two criteria.)
  Signals: the best evidence score (retrieval), question coverage (Arabic questions only) and the
  reader's answer probability (where the reader ran).
- **The short answer's check** over every question given a short answer (checked or not): wrong
  when the question is unanswerable or the answer matches no gold (`eval.metrics.short_answer_wrong`).
  Signals: the reader's answer probability and span log-probability, and the evidence score.

Leaves out: choosing thresholds (bench/calibrate_abstention.py) and plotting (eval.report).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from eval import metrics, stats

MAX_POINTS = 200  # points kept per curve in metrics.json (the area uses all of them)


def curve(confidence: Sequence[float], wrong: Sequence[bool]) -> list[dict]:
    """The risk–coverage curve: answering questions with confidence >= t, for every distinct t
    (highest first). Returns [{"threshold", "coverage", "risk", "answered"}], coverage rising.
    Raises `ValueError` for a confidence that is not a finite number.
    """
    if len(confidence) != len(wrong):
        raise ValueError("one confidence per question")
    if not all(isinstance(c, int | float) and math.isfinite(c) for c in confidence):
        raise ValueError("confidences must be finite numbers")
    pairs = sorted(zip(confidence, wrong), key=lambda p: -p[0])
    n, out, answered, bad, i = len(pairs), [], 0, 0, 0
    while i < n:
        t = pairs[i][0]
        while i < n and pairs[i][0] == t:  # ties enter together: one threshold answers all of them
            answered += 1
            bad += bool(pairs[i][1])
            i += 1
        out.append({"threshold": t, "coverage": answered / n, "risk": bad / answered, "answered": answered})
    return out


def aurc(points: list[dict]) -> float | None:
    """Area under a `curve`: risk integrated over coverage (a step function, each tie group's
    risk held over the coverage it adds), i.e. the mean risk over all coverages."""
    if not points:
        return None
    area, last = 0.0, 0.0
    for p in points:
        area += p["risk"] * (p["coverage"] - last)
        last = p["coverage"]
    return area


def e_aurc(points: list[dict], wrong: Sequence[bool]) -> float | None:
    """Excess AURC: `aurc(points)` less the AURC of a perfect ordering of the same questions (every
    right one before every wrong one), so signals measured on sets with different error rates can be
    compared; 0 is a perfect ordering."""
    if not points:
        return None
    ordered = sorted(bool(w) for w in wrong)  # every right answer first, each at its own threshold
    optimal = aurc(curve([float(len(ordered) - i) for i in range(len(ordered))], ordered))
    return aurc(points) - optimal


def operating_point(answered: Sequence[bool], wrong: Sequence[bool]) -> dict:
    """The shipped decision as one point: {"coverage", "risk", "risk_low", "risk_high", "answered", "n"}
    (risk with its Wilson 95% interval; None when nothing is answered)."""
    n = len(answered)
    k = sum(1 for a in answered if a)
    bad = sum(1 for a, w in zip(answered, wrong) if a and w)
    low, high = stats.wilson(bad, k)
    return {
        "coverage": k / n if n else None,
        "risk": bad / k if k else None,
        "risk_low": low,
        "risk_high": high,
        "answered": k,
        "n": n,
    }


def _thin(points: list[dict]) -> list[dict]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]


def _signal_curves(rows: list[dict], signals: dict[str, str]) -> dict:
    out = {}
    for label, key in signals.items():
        kept = [r for r in rows if isinstance(r.get(key), int | float) and math.isfinite(r[key])]
        if len(kept) < 2:
            continue
        wrong = [r["wrong"] for r in kept]
        points = curve([r[key] for r in kept], wrong)
        out[label] = {
            "n": len(kept),
            "aurc": aurc(points),
            "e_aurc": e_aurc(points, wrong),
            "error_rate": sum(r["wrong"] for r in kept) / len(kept),
            "shipped": operating_point([r["shipped"] for r in kept], [r["wrong"] for r in kept]),
            "points": _thin(points),
        }
    return out


def abstention_rows(records: list[dict]) -> list[dict]:
    """One row per answered-or-abstained question: its signals, whether the run answered it
    (`shipped`), and whether answering it is wrong."""
    rows = []
    for r in records:
        a = r.get("answer")
        if not a:
            continue
        wrong = r["unanswerable"] or r["scores"].get("hit@1") != 1.0
        rows.append(
            {
                "lang": r["lang"],
                "shipped": not a["abstained"],
                "wrong": wrong,
                "score": r.get("best_score"),
                "coverage": r.get("coverage", (a.get("signals") or {}).get("coverage")),
                "answer_probability": (a.get("signals") or {}).get("answer_probability"),
            }
        )
    return rows


def short_answer_rows(records: list[dict]) -> list[dict]:
    """One row per question given a short answer (checked or not): signals, `shipped` (shown as
    checked) and `wrong`."""
    rows = []
    for r in records:
        a = r.get("answer")
        short = (a or {}).get("short_answer")
        if not short or a["abstained"]:
            continue
        signals = a.get("signals") or {}
        wrong = True if r["unanswerable"] else metrics.short_answer_wrong(short, r["gold_answers"])
        rows.append(
            {
                "lang": r["lang"],
                "shipped": bool(short["verified"]),
                "wrong": wrong,
                "score": r.get("best_score"),
                "answer_probability": signals.get("answer_probability"),
                "span_logprob": signals.get("span_logprob"),
                "agreement": signals.get("agreement"),
            }
        )
    return rows


ABSTENTION_SIGNALS = {
    "evidence score": "score",
    "question coverage": "coverage",
    "reader answer probability": "answer_probability",
}
SHORT_SIGNALS = {
    "reader answer probability": "answer_probability",
    "span log-probability": "span_logprob",
    "evidence score": "score",
    "second reading agrees": "agreement",  # 1 or 0 (qa.reading.second_reading): a two-step curve
}


def summarise(records: list[dict]) -> dict:
    """Risk–coverage of abstention and of the short answer's check, overall and the shipped point
    per question language: {"abstention": {...}, "short_answer": {...}}, each with "n", "shipped",
    "shipped_by_lang" and "curves" (label -> {"n", "aurc", "e_aurc", "error_rate", "shipped", "points"})."""
    out = {}
    for name, rows, signals in (
        ("abstention", abstention_rows(records), ABSTENTION_SIGNALS),
        ("short_answer", short_answer_rows(records), SHORT_SIGNALS),
    ):
        by_lang = {}
        for lang in sorted({r["lang"] for r in rows}):
            part = [r for r in rows if r["lang"] == lang]
            by_lang[lang] = operating_point([r["shipped"] for r in part], [r["wrong"] for r in part])
        out[name] = {
            "n": len(rows),
            "shipped": operating_point([r["shipped"] for r in rows], [r["wrong"] for r in rows]),
            "shipped_by_lang": by_lang,
            "curves": _signal_curves(rows, signals),
        }
    return out
