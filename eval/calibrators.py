"""Calibrators: fit the short answer's score on one part of the calibration set, certify its bar on the other.

`build(rows, key)` takes the labelled signal lines of one calibration key (eval.signals: one
backend, model and reader prompt), fits a logistic regression (scikit-learn, standardised
features, `qa.confidence.FEATURES`, language among them) on the "fit" part's candidates (`candidate`),
scores the "certify" part, and certifies one bar per question language by Learn-then-Test
(eval.certify). The result is the JSON entry `qa.confidence` reads at run time (the weights, the
bars, what they were measured on); `write` puts it into qa/calibrations.json under its key.

A logistic regression, not boosted trees: with a few hundred labelled answers per part, eleven
weights are what the data can pin down, and a dot product needs no library at run time.

Leaves out: running the questions (eval.runner), the labels (eval.signals), the test (eval.certify).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np

from eval import certify, selective
from qa import confidence as qconfidence

MIN_FIT = 30  # labelled candidates below which no model is fit
LANGS = ("ar", "en")


def candidate(row: dict) -> bool:
    """A question whose short answer the checked label can go to: the reader gave one (its words
    located in a cited sentence, of the asked type) and the answer did not abstain. Whether its rules
    passed (for an English question: its English wording checked word by word) is a feature, not a
    gate: a short answer whose wording was refused is shown as its Arabic words with their gloss, and
    those words can be certified right. Decided before any certification was looked at (2026-12-06):
    a superset of the rules-passed answers, ordered by the same score, can only add accepted ones."""
    return bool(row["has_short"]) and not row["abstained"]


def _matrix(rows: list[dict]) -> np.ndarray:
    return np.array([[r["features"][f] for f in qconfidence.FEATURES] for r in rows], dtype=float)


def fit(rows: list[dict]) -> dict | None:
    """A logistic regression P(right | features) on the labelled candidates of `rows`, as
    {"mean", "scale", "coef", "intercept", "n_fit", "n_wrong"}; None when there are fewer than
    `MIN_FIT` or only one label."""
    from sklearn.linear_model import LogisticRegression  # deferred: only calibration needs it

    data = [r for r in rows if candidate(r) and r["wrong"] is not None]
    labels = np.array([not r["wrong"] for r in data], dtype=int)
    if len(data) < MIN_FIT or labels.min() == labels.max():
        return None
    x = _matrix(data)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, labels)
    return {
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "coef": [round(float(v), 6) for v in model.coef_[0]],
        "intercept": round(float(model.intercept_[0]), 6),
        "n_fit": len(data),
        "n_wrong": int(len(data) - labels.sum()),
    }


def scores(cal: qconfidence.Calibration, rows: list[dict]) -> list[float]:
    """Each row's calibrated score; -inf for a row that is not a candidate (never accepted)."""
    return [cal.score(r["features"]) if candidate(r) else -math.inf for r in rows]


def build(rows: list[dict], key: str, *, alpha: float = certify.ALPHA, delta: float = certify.DELTA) -> dict:
    """The calibration entry for `key` from its labelled rows (the others are ignored). See the module
    docstring; a language with no certified bar gets one with threshold None and the reason."""
    mine = [r for r in rows if r["key"] == key and (r["wrong"] is not None or not candidate(r))]
    fit_rows = [r for r in mine if r["part"] == "fit"]
    cert_rows = [r for r in mine if r["part"] == "certify"]
    model = fit(fit_rows)
    entry = {
        "features": list(qconfidence.FEATURES),
        "measured_on": f"{len(fit_rows)} questions fit, {len(cert_rows)} certify (arabic-qa-calib), "
        f"{dt.date.today().isoformat()}",
        "bars": [],
    }
    if model is None:
        n_candidates = sum(candidate(r) and r["wrong"] is not None for r in fit_rows)
        entry |= {"mean": [0.0] * len(qconfidence.FEATURES), "scale": [1.0] * len(qconfidence.FEATURES)}
        entry |= {
            "coef": [0.0] * len(qconfidence.FEATURES),
            "intercept": 0.0,
            "n_fit": n_candidates,
            "n_wrong": None,
            "fitted": False,
        }
        reason = f"too few labelled short answers to fit a calibrator ({n_candidates} in the fit part, {MIN_FIT} needed)"
        for lang in LANGS:
            n = sum(r["lang"] == lang for r in cert_rows)
            entry["bars"].append(_bar("short_answer", lang, None, n, reason=reason, alpha=alpha, delta=delta))
        return entry
    entry |= model
    entry["fitted"] = True
    cal = qconfidence.Calibration(
        key, qconfidence.FEATURES, tuple(model["mean"]), tuple(model["scale"]), tuple(model["coef"]),
        model["intercept"], {},
    )  # fmt: skip
    for lang in LANGS:
        part = [r for r in cert_rows if r["lang"] == lang]
        cert = certify.certify(scores(cal, part), [bool(r["wrong"]) for r in part], alpha=alpha, delta=delta)
        entry["bars"].append(_bar("short_answer", lang, cert, len(part), alpha=alpha, delta=delta))
    return entry


def _bar(decision, lang, cert: certify.Certificate | None, n: int, *, reason=None, alpha, delta) -> dict:
    if cert is None:
        return {
            "decision": decision, "lang": lang, "threshold": None, "n": n, "accepted": 0, "wrong": 0,
            "upper": None, "alpha": alpha, "delta": delta, "reason": reason,
        }  # fmt: skip
    return {
        "decision": decision,
        "lang": lang,
        "threshold": None if cert.threshold is None else round(cert.threshold, 6),
        "n": n,
        "accepted": cert.accepted,
        "wrong": cert.wrong,
        "upper": None if cert.upper is None else round(cert.upper, 4),
        "p_value": None if cert.p_value is None else round(cert.p_value, 4),
        "coverage": round(cert.coverage, 4),
        "alpha": alpha,
        "delta": delta,
        "reason": cert.reason,
    }


def write(key: str, entry: dict, path: Path = qconfidence.CALIBRATIONS) -> None:
    """Put `entry` under `key` in the calibrations file (the other keys kept), sorted, indented."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.setdefault(
        "about",
        "Calibrated scores and certified bars for 'checked' (qa.confidence), one entry per backend:model:"
        "reader-prompt-hash; made by `python -m eval certify` (eval.calibrators). Do not edit by hand.",
    )
    data.setdefault("calibrations", {})[key] = entry
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def risk_coverage(scores: list[float], wrong: list[bool]) -> list[tuple[float, float, int]]:
    """(coverage of all `scores`, wrong among accepted, accepted) at each distinct score, strictest first:
    `eval.selective.curve` over the answers that can be accepted (score > -inf), coverage counted over all."""
    kept = [(s, w) for s, w in zip(scores, wrong, strict=True) if s != -math.inf]
    if not kept:
        return []
    share = len(kept) / len(scores)
    points = selective.curve([s for s, _ in kept], [w for _, w in kept])
    return [(p["coverage"] * share, p["risk"], p["answered"]) for p in points]


def plot(rows: list[dict], key: str, entry: dict, path: Path) -> None:
    """The certification part's risk-coverage curves with the certified points (eval.report.certified_plot)."""
    from eval import report

    cal = qconfidence.parse({"calibrations": {key: entry}})[key]
    cert_rows = [r for r in rows if r["key"] == key and r["part"] == "certify"]
    curves = {}
    for lang in LANGS:
        part = [r for r in cert_rows if r["lang"] == lang and (r["wrong"] is not None or not candidate(r))]
        curves[lang] = risk_coverage(scores(cal, part), [bool(r["wrong"]) for r in part])
    report.certified_plot(path, curves, {b["lang"]: b for b in entry["bars"]})
