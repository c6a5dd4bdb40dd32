"""Confidence: one calibrated score per short answer, and whether a certified bar labels it checked.

A short answer that passed the reader's rules (qa.reader: its words are in the sentence, of the
asked type, its English wording checked, two readings agree) is still wrong about one time in
three on held-out articles (issue 31). "Checked" therefore needs a promise measured on data: a
logistic regression over the signals the decision can see (`features`), fit on one part of the
calibration set (eval.calibrators), and a threshold per language certified on another part by
Learn-then-Test (eval.certify): with probability >= 1 - delta, fewer than alpha of the answers it
labels checked are wrong, for questions like the calibration set's.

The fitted model and its certificates live in `qa/calibrations.json`, keyed by what they were
measured with (`calibration_key`: backend, model, the reader prompt's hash). A backend, model or
prompt with no entry there labels nothing checked, and says so; so does a language whose
certification passed no threshold. Scoring is a dot product in plain Python: no scikit-learn at
run time.

The same file holds the quote's abstention bar per question language, certified by
eval.abstention (`abstention_bar`): the bar below which the quote says no passage is close enough,
with what it promises (fewer than alpha of answerable questions refused). The score it compares is
the best evidence sentence's retrieval score, adjusted by the retrieval's other signals when an
`Adjustment` was fitted for the language (`abstention_score`). It depends on the embedders, not on
the language model, so it is not keyed by backend.

Leaves out: fitting and certifying (eval.calibrators, eval.certify, eval.abstention), the rules themselves
(qa.reader, qa.answer_checks, qa.verify) and what the page makes of the label (web.render).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa import text as qtext
from qa.config import PROJECT_DIR
from qa.types import EVIDENCE_SIGNALS

log = logging.getLogger(__name__)

CALIBRATIONS = PROJECT_DIR / "qa" / "calibrations.json"
READER_PROMPT = PROJECT_DIR / "prompts" / "reader.txt"
# The signals a short answer's score is made of, in this order (eval.calibrators fits one weight each).
FEATURES = (
    "english",  # the question is English (its wording is a rendering, not the span)
    "answer_probability",  # 1 - P(no answer) at the sentence-number step (qa.reading.ReaderSignals)
    "span_logprob",  # mean log-probability per token of the copied words
    "agreement",  # the second reading picked overlapping words of the same sentence (0.5: not made)
    "rules_passed",  # the reader's rules passed on the first reading (its wording checked)
    "best_score",  # the best evidence sentence's retrieval score
    "margin",  # that score less the next one's
    "chosen_rank",  # the rank of the sentence the words come from among the evidence (0 = best)
    "span_words",  # log(1 + words in the span)
    "question_overlap",  # share of the question's content words in the chosen sentence
    "coverage",  # share of an Arabic question's distinctive words in the first passage (1 for English)
    # Two of the oldest extractive-QA cues (an answer rarely repeats the question; the question's
    # words sit around it): the share of the span's words the question holds (the reader copying
    # the subject back), and the share of the question's words in the sentence outside the span.
    # Added 2026-12-06 on the 710 labelled short answers: each alone orders Arabic ones at AUROC
    # 0.62 / 0.64 (English ~0.5: its words are not the span's); with them the calibrator's certify
    # AUROC went 0.68 -> 0.73 Arabic, 0.71 -> 0.73 English (docs/measurements.md, "Calibrations").
    "span_in_question",
    "question_elsewhere",
)
# Defaults for a signal the backend did not give (no log-probabilities: an OpenAI-compatible server
# that returns none): the middle of what the local model gives on the dev set, so a missing signal
# neither raises nor lowers the score much.
MISSING = {"answer_probability": 0.9, "span_logprob": -0.5, "agreement": 0.5, "coverage": 1.0}


def features(question: str, lang: str, signals: dict, span: str, sentence: str) -> dict[str, float]:
    """The score's inputs for one short answer, every value a finite float.

    `signals` is the answer's `signals` dict (qa.reader: the reader's log-probabilities, the
    evidence scores it saw, the chosen sentence's rank, agreement, the rules' verdict); `span` the
    copied words; `sentence` the cited sentence they come from.
    """

    def get(name: str) -> float:
        value = signals.get(name)
        return float(MISSING.get(name, 0.0) if value is None else value)

    scores = signals.get("evidence_scores") or [0.0]
    asked = set(qtext.tokens(question))
    found = set(qtext.tokens(sentence))
    copied = set(qtext.tokens(span))
    return {
        "english": float(lang == "en"),
        "answer_probability": get("answer_probability"),
        "span_logprob": max(get("span_logprob"), -5.0),
        "agreement": get("agreement"),
        "rules_passed": float(bool(signals.get("rules_passed", signals.get("checked_alone", False)))),
        "best_score": float(scores[0]),
        "margin": float(scores[0] - scores[1]) if len(scores) > 1 else 0.5,
        "chosen_rank": float(min(signals.get("chosen") or 0, 3)),
        "span_words": math.log1p(len(span.split())),
        "question_overlap": len(asked & found) / len(asked) if asked else 0.0,
        "coverage": get("coverage"),
        "span_in_question": len(copied & asked) / len(copied) if copied else 0.0,
        "question_elsewhere": len(asked & (found - copied)) / len(asked) if asked else 0.0,
    }


@dataclass(frozen=True)
class Bar:
    """A certified bar for one decision and language: accept when score >= `threshold` (None: never).

    `accepted` of `n` certification answers cleared it, `wrong` of them wrong; `upper` is the
    (1 - delta) bound on the wrong rate among accepted; `reason` says why nothing is certified."""

    threshold: float | None
    n: int
    accepted: int
    wrong: int
    upper: float | None
    alpha: float
    delta: float
    reason: str | None = None

    def guarantee(self) -> str:
        """What "checked" promises, in one sentence for the page and the JSON."""
        return (
            f"fewer than {round(self.alpha * 100)} in 100 such answers are wrong "
            f"(certified with {round((1 - self.delta) * 100)}% confidence on {self.n} questions)"
        )


@dataclass(frozen=True)
class Calibration:
    """A fitted score (standardised features, logistic regression) and its bars per decision and language."""

    key: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    bars: dict  # {(decision, lang): Bar}
    measured_on: str = ""
    fitted: bool = True  # False: too few labels to fit; the weights are zeros and score nothing

    def score(self, values: dict[str, float]) -> float:
        """P(right) by the fitted model, in [0, 1]."""
        z = self.intercept + sum(
            c * (values[f] - m) / s
            for f, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def bar(self, decision: str, lang: str) -> Bar | None:
        return self.bars.get((decision, lang))


def calibration_key(settings) -> str:
    """What a calibration is valid for: "backend:model:prompt-hash" (the reader prompt's sha256, 12 hex)."""
    model = settings.llm_model if settings.llm_backend != "local" else "qwen2.5-coder-1.5b-q4_k_m"
    try:
        prompt = hashlib.sha256(READER_PROMPT.read_bytes()).hexdigest()[:12]
    except OSError:
        prompt = "none"
    return f"{settings.llm_backend}:{model}:{prompt}"


@lru_cache(maxsize=8)
def _load(content: bytes) -> dict[str, Calibration]:
    try:
        return parse(json.loads(content.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # Fails safe: an unreadable file certifies nothing, so nothing is labelled checked.
        log.warning("the calibrations file cannot be read (%s): nothing is labelled checked", exc)
        return {}


def parse(raw: dict) -> dict[str, Calibration]:
    """The calibrations of a calibrations file's JSON, by key; raises KeyError/TypeError when malformed."""
    out = {}
    for key, entry in raw.get("calibrations", {}).items():
        bars = {
            (b["decision"], b["lang"]): Bar(
                b.get("threshold"),
                b["n"],
                b["accepted"],
                b["wrong"],
                b.get("upper"),
                b["alpha"],
                b["delta"],
                b.get("reason"),
            )
            for b in entry["bars"]
        }
        out[key] = Calibration(
            key,
            tuple(entry["features"]),
            tuple(entry["mean"]),
            tuple(entry["scale"]),
            tuple(entry["coef"]),
            float(entry["intercept"]),
            bars,
            entry.get("measured_on", ""),
            bool(entry.get("fitted", True)),
        )
    return out


def calibration_for(settings, path: Path | None = None) -> Calibration | None:
    """The calibration for the configured backend, model and reader prompt, or None when there is none."""
    path = Path(path or getattr(settings, "calibrations_path", None) or CALIBRATIONS)
    try:
        content = path.read_bytes()  # a few kB, read per answer so that a new certification applies at once
    except OSError:
        return None
    return _load(content).get(calibration_key(settings))


# What a results line keeps of a retrieval (eval.runner) and what the abstention score reads: the
# best evidence sentences and the first passages, this many of each.
SIGNALS_KEPT = 3
# The columns of a passage's row in `retrieval_signals`, qa.types.Hit's scores in order.
HIT_SIGNALS = ("score", "dense", "sentence", "lexical", "second")


def retrieval_signals(retrieval) -> dict[str, list[list[float]]]:
    """A retrieval's own signals as plain lists, for a results line and for `abstention_inputs`.

    "evidence": the best `SIGNALS_KEPT` evidence sentences by `Evidence.score`, each
    [score, *Evidence.features] (qa.types.EVIDENCE_SIGNALS order); "hits": the first `SIGNALS_KEPT`
    passages, each as `HIT_SIGNALS` (second -1 when no second embedder scored it). Empty lists when
    nothing was retrieved.
    """
    evidence = [
        [round(e.score, 5), *(round(f, 5) for f in e.features)] for e in retrieval.evidence[:SIGNALS_KEPT]
    ]
    hits = [
        [round(h.score, 5), round(h.dense, 5), round(h.sentence, 5), round(h.lexical, 5),
         -1.0 if h.second is None else round(h.second, 5)]
        for h in retrieval.hits[:SIGNALS_KEPT]
    ]  # fmt: skip
    return {"evidence": evidence, "hits": hits}


# The names `abstention_inputs` gives, besides "best".
ABSTENTION_INPUTS = ("gap", *EVIDENCE_SIGNALS, *(f"hit_{name}" for name in HIT_SIGNALS))


def abstention_inputs(signals: dict) -> dict[str, float]:
    """The abstention score's candidate inputs from `retrieval_signals` output: "best" (the best
    evidence score), each of qa.types.EVIDENCE_SIGNALS of that sentence, "hit_" + each of
    `HIT_SIGNALS` of the first passage, and "gap" (the best evidence score less the next one's, the
    best's own when it is alone). Every value a finite float; {} when nothing was retrieved or the
    sentence's signals were not recorded.

    Example: abstention_inputs({"evidence": [[0.6, *features]], "hits": [[1.0, 0.3, 0.4, 2.0, 0.8]]})["gap"] == 0.6
    """
    evidence, hits = signals.get("evidence") or [], signals.get("hits") or []
    if not evidence or not hits or len(evidence[0]) != 1 + len(EVIDENCE_SIGNALS):
        return {}
    best = evidence[0]
    values = {"best": float(best[0]), "gap": float(best[0] - (evidence[1][0] if len(evidence) > 1 else 0.0))}
    values.update({name: float(v) for name, v in zip(EVIDENCE_SIGNALS, best[1:])})
    values.update({f"hit_{name}": float(v) for name, v in zip(HIT_SIGNALS, hits[0])})
    return values


@dataclass(frozen=True)
class Adjustment:
    """A fitted correction of the best evidence score by the retrieval's other signals, in the best
    score's own units: best + sum(weights[f] * (inputs[f] - center[f])) (eval.abstention fits it:
    a logistic regression of answerable against held-out questions on the calibration set's fit
    part, its weights divided by the best score's). `source` says what it was fitted on."""

    weights: dict[str, float]
    center: dict[str, float]
    source: str = ""

    def score(self, inputs: dict[str, float]) -> float | None:
        """The adjusted score of `abstention_inputs` output; None when an input it reads is missing."""
        if "best" not in inputs or any(name not in inputs for name in self.weights):
            return None
        return inputs["best"] + sum(
            w * (inputs[name] - self.center[name]) for name, w in self.weights.items()
        )


@dataclass(frozen=True)
class AbstentionBar:
    """The quote's certified abstention bar for one question language (eval.abstention).

    Abstaining when the abstention score (`abstention_score`: the best evidence score, adjusted by
    `adjustment` when there is one) is below `threshold` refused `refused` of `n` answerable
    calibration questions; with probability >= 1 - delta, it refuses fewer than `alpha` of answerable
    questions like those."""

    threshold: float
    n: int
    refused: int
    alpha: float
    delta: float
    adjustment: Adjustment | None = None

    def guarantee(self) -> str:
        """What the bar promises, in one clause for the abstention's note."""
        return (
            f"wrongly refuses fewer than {round(self.alpha * 100)} in 100 answerable questions like "
            f"those it was measured on (certified with {round((1 - self.delta) * 100)}% confidence on "
            f"{self.n} questions of a calibration set)"
        )


@lru_cache(maxsize=8)
def _abstention(content: bytes) -> dict[str, AbstentionBar]:
    try:
        raw = json.loads(content.decode("utf-8")).get("abstention", {})
        adjustments = {
            lang: Adjustment(
                {k: float(v) for k, v in a["weights"].items()},
                {k: float(a["center"][k]) for k in a["weights"]},
                str(a.get("source", "")),
            )
            for lang, a in (raw.get("adjustments") or {}).items()
        }
        unknown = {n for a in adjustments.values() for n in a.weights} - set(ABSTENTION_INPUTS)
        if unknown:  # a bar certified on a score this code cannot compute must not be used
            raise ValueError(f"an adjustment reads unknown signals {sorted(unknown)}")
        return {
            lang: AbstentionBar(
                float(b["threshold"]),
                int(b["n"]),
                int(b["refused"]),
                b["alpha"],
                b["delta"],
                adjustments.get(lang),
            )
            for lang, b in raw.get("bars", {}).items()
            if b.get("threshold") is not None
        }
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("the calibrations file cannot be read (%s): no abstention bar is certified", exc)
        return {}


def abstention_bar(language: str, settings=None, path: Path | None = None) -> AbstentionBar | None:
    """The certified abstention bar for questions in `language` ("ar", "en"), or None when there is none."""
    path = Path(path or getattr(settings, "calibrations_path", None) or CALIBRATIONS)
    try:
        content = path.read_bytes()
    except OSError:
        return None
    return _abstention(content).get(language)


def abstention_score(retrieval, settings=None) -> float | None:
    """The score the quote's abstention compares with its bar (qa.answer.is_weak): the best evidence
    sentence's `Evidence.score`, adjusted by the certified bar's `Adjustment` for the question's
    language when there is one and `settings.abstain_adjusted` is on. None when nothing was retrieved.
    """
    if not retrieval.evidence:
        return None
    best = float(retrieval.evidence[0].score)
    if settings is not None and not getattr(settings, "abstain_adjusted", True):
        return best
    bar = abstention_bar(retrieval.language, settings)
    if bar is None or bar.adjustment is None:
        return best
    adjusted = bar.adjustment.score(abstention_inputs(retrieval_signals(retrieval)))
    return best if adjusted is None else adjusted


@dataclass(frozen=True)
class Verdict:
    """Whether a short answer is labelled checked, its calibrated score, and the sentence that says
    what the label promises (`guarantee`) or why it is not given (`why_not`)."""

    checked: bool
    score: float | None
    guarantee: str | None
    why_not: str | None


def judge(settings, decision: str, lang: str, values: dict[str, float]) -> Verdict:
    """Score `values` with the configured backend's calibration and compare with its certified bar.

    Never raises: no calibration, or no certified bar for `lang`, is a Verdict that is not checked,
    with the reason in one sentence.
    """
    cal = calibration_for(settings)
    name = qtext.LANGUAGE_NAMES.get(lang, lang)
    if cal is None:
        why = "this language model has not been calibrated, so no short answer of it is labelled checked"
        return Verdict(False, None, None, why)
    score = cal.score(values) if cal.fitted else None
    bar = cal.bar(decision, lang)
    if bar is None or bar.threshold is None:
        reason = bar.reason if bar and bar.reason else "no certification was made"
        why = f"no bar could be certified for {name} questions ({reason})"
        return Verdict(False, score, None, why)
    if score is None or score < bar.threshold:
        why = "its calibrated confidence is below the certified bar"
        return Verdict(False, score, bar.guarantee(), why)
    return Verdict(True, score, bar.guarantee(), None)
