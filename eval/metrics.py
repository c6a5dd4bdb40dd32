"""Metrics: per-question scores and their aggregates, each defined once here and in the report.

Retrieval (hit@k, MRR of the gold span among retrieved passages), citations (precision, recall,
quote-offset mismatches), answers (token F1 and exact match after Arabic normalisation, only
against gold answers in the answer's own language), abstention (accuracy on unanswerable
questions, false abstentions on answerable ones) and latency percentiles. A score that does not
apply to a question is None and is left out of the mean; every aggregate carries its count and its
95% interval (`{"value", "low", "high", "n"}`: Wilson for the rates in `RATES`, a bootstrap over
articles for the means, eval/stats.py).
Leaves out: running questions (runner.py), the statistics themselves (stats.py) and plots (report.py).
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter

from eval import stats
from qa import text as qtext
from qa.answer import PHRASES

Span = tuple[str, int, int]  # (doc id, start, end)

DEFINITIONS = {
    "hit@1": "answerable questions whose gold span overlaps the top retrieved passage",
    "hit@3": "… overlaps one of the top 3 retrieved passages",
    "hit@5": "… overlaps one of the top 5 retrieved passages",
    "mrr": "mean of 1/rank of the first retrieved passage overlapping a gold span (0 if none in the top 10)",
    "citation_precision": "cited passages that overlap a gold span, per question with citations (mean)",
    "citation_recall": "gold spans overlapped by some citation, per answerable question (mean; abstaining = 0)",
    "f1": "token F1 (normalised, stemmed, stopwords dropped) against the best gold answer in the answer's language; abstaining = 0",
    "em": "exact match after normalisation against a gold answer in the answer's language",
    "gold_in_answer": "a normalised gold answer occurs inside the normalised answer (extractive answers quote whole sentences)",
    "abstain_unanswerable": "unanswerable questions the system abstained on (accuracy)",
    "false_abstention": "answerable questions the system abstained on (lower is better)",
    "answered_unanswerable_cited": "unanswerable questions answered anyway, with citations",
    "span_f1": "SQuAD-style token F1 of the short answer's source span against the Arabic gold answers (best gold); no short answer = 0",
    "span_em": "SQuAD-style exact match of the short answer's source span against an Arabic gold answer; no short answer = 0",
    "short_verified": "answerable questions shown a verified short answer in the question's language",
    "short_fallback": "answerable questions whose short answer is the unverified span (the rendering failed its check)",
    "short_f1": "English questions: token F1 of the verified English short answer against `answers_en` (no verified answer = 0)",
    "short_gold_in_answer": "English questions: an English gold answer occurs inside the verified short answer",
    "wrong_but_shown": "verified short answers that match no gold answer in either language (F1 = 0 against both), per short answer shown",
    "short_right": "answerable questions shown a verified short answer in the question's language that is right (not checked_wrong)",
    "checked_wrong": "verified short answers that are wrong, per verified short answer shown: F1 < 0.5 against both the Arabic and the English gold and no gold inside, or any for an unanswerable question",
    "short_checked": "answerable questions shown a checked short answer: its calibrated confidence clears the bar certified for its language (qa.confidence), its rules passed or not",
    "certified_wrong": "checked (certified) short answers that are wrong, per checked short answer shown; the promise is below 5%",
    "timed_out": "questions where a language-model reply was cut at the time cap (QA_LLM_TIMEOUT_S); lower is better, and any is a warning",
}
# Scores that are 0 or 1 per question: their mean is a rate and gets a Wilson interval. The others
# (mrr, citation precision/recall, f1, span_f1, short_f1) are graded: a bootstrap interval.
RATES = frozenset(
    {
        "hit@1", "hit@3", "hit@5", "em", "gold_in_answer", "abstain_unanswerable", "false_abstention",
        "span_em", "short_verified", "short_fallback", "short_gold_in_answer", "wrong_but_shown",
        "short_right", "checked_wrong", "short_checked", "certified_wrong", "timed_out",
    }
)  # fmt: skip
# Facts of the run, not estimates of anything beyond it: shown without an interval.
FACTS = frozenset({"timed_out"})
# Lower is better for these (for compare's verdicts); higher for every other metric.
LOWER_IS_BETTER = frozenset(
    {"false_abstention", "wrong_but_shown", "checked_wrong", "short_fallback", "timed_out"}
)
# A short answer is wrong below this token F1 against both golds, and not containing one (the
# product's target definition): partial matches above it ("the Telegraph" for "The Daily
# Telegraph", F1 0.8) are not counted wrong.
WRONG_F1 = 0.5

_MARKER = re.compile(r"\[\d+\]")
_FRAMING = sorted(
    {
        part.strip()
        for phrases in PHRASES.values()
        for key in ("lead", "more")
        for part in re.split(r"\{n\}|\{quote\}", phrases[key])
        if part.strip()
    },
    key=len,
    reverse=True,
)


# ---------------------------------------------------------------------------------------------
# Answers


def answer_content(text: str) -> str:
    """The answer without `[n]` markers and the extractive mode's fixed framing words.

    Example: answer_content("According to the article [1]: «x»") == "x"
    """
    text = _MARKER.sub(" ", text)
    for part in _FRAMING:
        text = text.replace(part, " ")
    return " ".join(text.replace("«", " ").replace("»", " ").split())


def answer_tokens(text: str) -> list[str]:
    """Normalised, stemmed tokens without stopwords; with stopwords when nothing else is left."""
    return qtext.tokens(text) or qtext.tokens(text, keep_stopwords=True)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD-style token F1 over `answer_tokens`.

    Example: token_f1("الرئيس بوتين", "بوتين") == 2/3
    """
    p, g = answer_tokens(prediction), answer_tokens(gold)
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or not common:
        return float(p == g)
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def _flat(text: str) -> str:
    return " ".join(re.findall(r"\w+", qtext.normalize(text)))


def exact_match(prediction: str, gold: str) -> bool:
    """Equal after normalisation (diacritics, alef/hamza, ta marbuta, digits, case, punctuation)."""
    return _flat(prediction) == _flat(gold) != ""


def contains(prediction: str, gold: str) -> bool:
    """The normalised gold occurs as whole words inside the normalised prediction."""
    g = _flat(gold)
    return bool(g) and f" {g} " in f" {_flat(prediction)} "


def language(text: str) -> str:
    """The language a text is written in (the script that dominates it)."""
    return qtext.detect_language(text)


def same_language(gold: str, lang: str, answer: str) -> bool:
    """Whether `gold` can be scored against an answer in `lang`.

    Digits-only golds fit both languages; Latin-script names and numbers are written the same in
    an Arabic text, so a Latin gold fits an Arabic answer that contains it word for word.
    Example: same_language("Russia-Now.com", "ar", "قال لموقع Russia-Now.com") is True
    """
    if language(gold) == lang or not re.search(r"[^\W\d_]", gold):
        return True
    return lang == "ar" and not re.search(r"[\u0600-\u06ff]", gold) and contains(answer, gold)


def score_answer(answer: str, golds: list[str], *, abstained: bool) -> dict:
    """F1, EM and containment against the golds in the answer's language.

    Returns `cross_language: True` and None scores when no gold is in the answer's language;
    abstaining on an answerable question scores 0.
    """
    if abstained:
        return {"f1": 0.0, "em": 0.0, "gold_in_answer": 0.0, "answer_lang": None, "cross_language": False}
    content = answer_content(answer)
    lang = language(content)
    same = [g for g in golds if same_language(g, lang, content)]
    if not same:
        return {"f1": None, "em": None, "gold_in_answer": None, "answer_lang": lang, "cross_language": True}
    return {
        "f1": max(token_f1(content, g) for g in same),
        "em": float(any(exact_match(content, g) for g in same)),
        "gold_in_answer": float(any(contains(content, g) for g in same)),
        "answer_lang": lang,
        "cross_language": False,
    }


def score_short_answer(short: dict | None, golds: list[str], *, lang: str, abstained: bool) -> dict:
    """Scores of the short answer (`Answer.to_dict()["short_answer"]`) of an answerable question.

    `golds` mixes Arabic spans and English answers (`answers_en`); each side is scored against its
    own. Span F1/EM use the source span (always the document's words); the English scores apply
    to English questions only.
    Example: score_short_answer(None, ["في الأردن"], lang="en", abstained=True)["span_f1"] == 0.0
    """
    ar, en = _split_golds(golds)
    out: dict = dict.fromkeys(
        (
            "span_f1",
            "span_em",
            "short_f1",
            "short_gold_in_answer",
            "wrong_but_shown",
            "checked_wrong",
            "certified_wrong",
        )
    )
    if ar:
        out["span_f1"], out["span_em"] = 0.0, 0.0
    if lang == "en" and en:
        out["short_f1"], out["short_gold_in_answer"] = 0.0, 0.0
    out["short_verified"] = float(bool(short and short["verified"] and not abstained))
    out["short_right"] = float(out["short_verified"] == 1.0 and not short_answer_wrong(short, golds))
    out["short_fallback"] = float(bool(short and not short["verified"] and not abstained))
    out["short_checked"] = float(bool(short and short.get("checked") and not abstained))
    if not short or abstained:
        return out
    span = short["source"]["quote"]
    span_f1 = max((token_f1(span, g) for g in ar), default=0.0)
    if ar:
        out["span_f1"] = span_f1
        out["span_em"] = float(any(exact_match(span, g) for g in ar))
    text_f1 = 0.0
    if short["verified"] and short["lang"] == "en" and en:
        text_f1 = max(token_f1(short["text"], g) for g in en)
        if lang == "en":
            out["short_f1"] = text_f1
            out["short_gold_in_answer"] = float(any(contains(short["text"], g) for g in en))
    if short["verified"]:
        out["wrong_but_shown"] = float(span_f1 == 0 and text_f1 == 0)
        out["checked_wrong"] = float(short_answer_wrong(short, golds))
    if short.get("checked"):  # also an unverified one: its Arabic words shown, a refused wording not
        out["certified_wrong"] = float(short_answer_wrong(short, golds))
    return out


def _split_golds(golds: list[str]) -> tuple[list[str], list[str]]:
    # A gold without letters ("15%", "1981") is written the same in both languages: it scores both sides.
    ar = [g for g in golds if re.search(r"[\u0600-\u06ff]", g) or not re.search(r"[^\W\d_]", g)]
    en = [g for g in golds if not re.search(r"[\u0600-\u06ff]", g)]
    return ar, en


def short_answer_wrong(short: dict, golds: list[str]) -> bool:
    """A short answer (`Answer.to_dict()["short_answer"]`) of an answerable question is wrong when
    neither its span (against the Arabic golds) nor its English text (against the English golds,
    when it is an English rendering) has token F1 >= `WRONG_F1` or contains a gold.

    Example: short_answer_wrong({"text": "x", "lang": "ar", "verified": True,
    "source": {"quote": "في الأردن"}}, ["الأردن"]) is False
    """
    ar, en = _split_golds(golds)
    span = short["source"]["quote"]
    if any(token_f1(span, g) >= WRONG_F1 or contains(span, g) for g in ar):
        return False
    if short["lang"] == "en" and short["text"] != span:
        return not any(token_f1(short["text"], g) >= WRONG_F1 or contains(short["text"], g) for g in en)
    return True


# ---------------------------------------------------------------------------------------------
# Spans: retrieval and citations


def overlaps(a: Span, b: Span) -> bool:
    """Two spans of the same document share at least one character."""
    return a[0] == b[0] and max(a[1], b[1]) < min(a[2], b[2])


def first_hit_rank(passages: list[Span], gold: list[Span]) -> int | None:
    """1-based rank of the first passage overlapping any gold span, or None."""
    for rank, p in enumerate(passages, start=1):
        if any(overlaps(p, g) for g in gold):
            return rank
    return None


def retrieval_scores(passages: list[Span], gold: list[Span]) -> dict:
    """hit@1/3/5 and reciprocal rank; None for all when there is no gold span."""
    if not gold:
        return {"rank": None, "hit@1": None, "hit@3": None, "hit@5": None, "mrr": None}
    rank = first_hit_rank(passages, gold)
    out = {f"hit@{k}": float(rank is not None and rank <= k) for k in (1, 3, 5)}
    return {"rank": rank, **out, "mrr": 1 / rank if rank else 0.0}


def citation_scores(cited: list[Span], gold: list[Span]) -> dict:
    """Precision over cited spans and recall over gold spans (None where undefined)."""
    if not gold:
        return {"citation_precision": None, "citation_recall": None}
    precision = sum(any(overlaps(c, g) for g in gold) for c in cited) / len(cited) if cited else None
    recall = sum(any(overlaps(c, g) for c in cited) for g in gold) / len(gold)
    return {"citation_precision": precision, "citation_recall": recall}


def quote_mismatches(citations: list[dict], texts: dict[str, str]) -> int:
    """Citations whose quote differs from the document text at their offsets (each one is a bug)."""
    bad = 0
    for c in citations:
        text = texts.get(c["doc"])
        if text is None or text[c["start"] : c["end"]] != c["quote"]:
            bad += 1
    return bad


def resolve_span(text: str, doc: str, needle: str, near: int | None = None) -> Span | None:
    """The span of `needle` in `text`: the occurrence nearest to `near`, else the first one."""
    if not needle:
        return None
    if near is not None and text[near : near + len(needle)] == needle:
        return (doc, near, near + len(needle))
    starts = [m.start() for m in re.finditer(re.escape(needle), text)]
    if not starts:
        return None
    start = min(starts, key=lambda s: abs(s - near)) if near is not None else starts[0]
    return (doc, start, start + len(needle))


# ---------------------------------------------------------------------------------------------
# Aggregates

SCORED = (
    "hit@1",
    "hit@3",
    "hit@5",
    "mrr",
    "citation_precision",
    "citation_recall",
    "f1",
    "em",
    "gold_in_answer",
    "abstain_unanswerable",
    "false_abstention",
    "span_f1",
    "span_em",
    "short_verified",
    "short_fallback",
    "short_f1",
    "short_gold_in_answer",
    "wrong_but_shown",
    "short_right",
    "checked_wrong",
    "short_checked",
    "certified_wrong",
    "timed_out",
)


def mean_with_count(
    values: list[float | None], *, name: str = "", groups: list[str | None] | None = None
) -> dict:
    """{"value": mean of the non-None values (None if there are none), "low", "high": its 95%
    interval (Wilson when `name` is in `RATES`, else a bootstrap over `groups`, the articles; none
    for the `FACTS` of a run), "n": how many}."""
    cell = stats.summary(values, kind="rate" if name in RATES else "mean", groups=groups)
    return {**cell, "low": None, "high": None} if name in FACTS else cell


def percentile(values: list[float], q: int) -> float | None:
    """The q-th percentile (an integer 0-100), interpolated between the sorted values
    (`statistics.quantiles`, inclusive method); None for no values. The one percentile of eval/ and
    bench/.

    Example: percentile([1, 2, 3, 4], 50) == 2.5
    """
    if not values:
        return None
    if len(values) == 1 or q <= 0 or q >= 100:
        return float(min(values) if q <= 0 else max(values))
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def aggregate(records: list[dict]) -> dict:
    """Means with counts of every scored metric, plus cross-language and offset counts."""
    groups = [r.get("doc") for r in records]
    out = {
        name: mean_with_count([score_of(r, name) for r in records], name=name, groups=groups)
        for name in SCORED
    }
    out["questions"] = len(records)
    out["errors"] = sum(1 for r in records if r.get("error"))
    out["cross_language_not_scored"] = sum(1 for r in records if r["scores"].get("cross_language"))
    out["citations_checked"] = sum(r["scores"].get("citations_checked", 0) for r in records)
    out["quote_mismatches"] = sum(r["scores"].get("quote_mismatches", 0) for r in records)
    return out


def score_of(record: dict, name: str) -> float | None:
    """One question's value of metric `name` (None where it does not apply)."""
    if name == "timed_out":  # a property of the run, not of the answer's quality: every answer counts
        answer = record.get("answer") or {}
        # A run made before time-outs were recorded has no "timeouts": unknown, not zero.
        return float(bool(answer["timeouts"])) if "timeouts" in answer else None
    return record["scores"].get(name)


def latency(records: list[dict]) -> dict:
    """Per timed stage present in the answers: {"p50", "p95": {"value", "low", "high", "n"} in ms
    (bootstrap 95% intervals), "max": ms, "n": answers timed}."""
    stages: dict[str, list[float]] = {}
    for r in records:
        for stage, ms in (r.get("answer") or {}).get("timings_ms", {}).items():
            stages.setdefault(stage, []).append(ms)
    return {
        stage: {
            "p50": stats.percentile_summary(v, 50),
            "p95": stats.percentile_summary(v, 95),
            "max": max(v),
            "n": len(v),
        }
        for stage, v in stages.items()
    }


def summarise(records: list[dict]) -> dict:
    """Overall, by question language, by category and (if present) by source, with latency."""
    by_lang: dict[str, list[dict]] = {}
    by_cat: dict[str, list[dict]] = {}
    by_source: dict[str, list[dict]] = {}
    for r in records:
        by_lang.setdefault(r["lang"], []).append(r)
        for c in r["categories"]:
            by_cat.setdefault(c, []).append(r)
        if r.get("source"):
            by_source.setdefault(str(r["source"]), []).append(r)
    summary = {
        "overall": aggregate(records),
        "by_lang": {k: aggregate(v) for k, v in sorted(by_lang.items())},
        "by_category": {k: aggregate(v) for k, v in sorted(by_cat.items())},
        "latency_ms": latency(records),
    }
    if by_source:
        summary["by_source"] = {k: aggregate(v) for k, v in sorted(by_source.items())}
    return summary


def best_threshold(answerable: list[float], unanswerable: list[float]) -> dict:
    """The abstention threshold maximising balanced accuracy (abstain when score < threshold).

    Among equally good thresholds, the middle of the lowest run of them is taken: it prefers
    answering to abstaining, and does not sit on the edge of a score.
    """
    if not answerable or not unanswerable:
        raise ValueError("calibration needs both answerable and unanswerable questions")
    points = sorted(set(answerable) | set(unanswerable))
    cuts = [points[0] - 1e-3] + [(a + b) / 2 for a, b in itertools.pairwise(points)] + [points[-1] + 1e-3]
    curve = [(t, balanced_accuracy(t, answerable, unanswerable)) for t in cuts]
    best = max(acc for _, acc in curve)
    first = next(i for i, (_, acc) in enumerate(curve) if acc >= best - 1e-12)
    last = first
    while last + 1 < len(curve) and curve[last + 1][1] >= best - 1e-12:
        last += 1
    threshold = curve[(first + last) // 2][0]
    return {"threshold": threshold, "balanced_accuracy": best, "curve": curve}


def balanced_accuracy(threshold: float, answerable: list[float], unanswerable: list[float]) -> float:
    """Mean of: share of unanswerable below the threshold, share of answerable at or above it."""
    abstain_ok = sum(s < threshold for s in unanswerable) / len(unanswerable)
    answer_ok = sum(s >= threshold for s in answerable) / len(answerable)
    return (abstain_ok + answer_ok) / 2
