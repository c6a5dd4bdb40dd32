"""Certified abstention: the quote's bar "no passage is close enough", certified per question language
so that it wrongly refuses fewer than 5 in 100 answerable questions.

The quote abstains when its best evidence sentence scores below a bar (`Settings.abstain_threshold`
for English questions, `abstain_threshold_ar` for Arabic ones; qa.answer). The score is the
retrieval's own (`Evidence.score`, the `best_score` a run records), so nothing is fit here, and the
calibration set's "fit" and "certify" parts are pooled to certify; the "report" part is never looked
at for the bar and reports what it does.

`certify_bar` is Learn-then-Test (Angelopoulos, Bates et al. 2021) for a risk that grows with the bar:
1. the bars tested are fixed in advance (`GRID`: 0 to 1 in steps of 0.005), loosest (lowest) first;
2. at each bar, k of the n answerable questions score below it (would be refused), and the null
   "the false-abstention rate is at least alpha" is rejected when p = binom.cdf(k, n, alpha) <= delta,
   with n and k shrunk by the design effect over articles when the questions' articles are given;
3. the first bar that fails stops the sequence (fixed-sequence testing needs no correction); the last
   bar that passed is certified: with probability at least 1 - delta, fewer than alpha of answerable
   questions like the calibration set's are refused by it. With n answerable questions the loosest
   bar can pass only when (1 - alpha)**n <= delta: 45 questions for 5% at delta 0.1.
The higher the bar, the more questions without an answer in the documents are refused; the
certified bar is the highest that keeps the promise. `build` adds what it refuses on the report
part: its false abstentions, and its abstentions on held-out questions (each asked with its own
article removed from the index: `python -m eval run … --held-out`), Wilson 95% intervals.

With `adjust` (`python -m eval certify-abstention … --adjust NAMES`), the score is first adjusted by
the retrieval's other signals (`fit_adjustment`: a logistic regression of answerable against held-out
questions, qa.confidence.Adjustment). Fitted on the calibration set's fit part, the bar is then
certified on the certify part alone and the fit part's held-out questions no longer report; fitted
on other articles' runs (`--adjust-on`, e.g. the dev set's), the fit and certify parts certify as
without it.

Leaves out: the reader's own "no answer" (qa.reader), which adds abstentions below
`reader_abstain_below` when the short answer is on; certifying it needs LLM runs made with its
abstention off (bench/calibrate_abstention.py replays those rules on the dev sample). The figures in
`build` for the whole pipeline replay the recorded reader abstentions at the new bar.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.special import betainc
from scipy.stats import beta

from eval import signals, stats
from eval.certify import ALPHA, DELTA, min_accepted
from eval.questions import part_of
from qa import confidence as qconfidence
from qa.answer import WEAK_NOTE

# The bars tested, fixed before any data is seen: evidence scores are cosines in [0, 1].
GRID = tuple(round(i * 0.005, 3) for i in range(201))
LANGS = ("ar", "en")
OUT = Path(__file__).resolve().parent / "calibration"
# Where the page reads the certified bars (qa.confidence.abstention_bar).
CALIBRATIONS = qconfidence.CALIBRATIONS


@dataclass(frozen=True)
class BarCertificate:
    """The outcome of `certify_bar` for one language.

    `threshold`: the certified bar (abstain when the best score is below it), None when none passed;
    `n` answerable questions, `refused` of them below the bar; `p_value` binom.cdf(refused, n, alpha);
    `upper`: the one-sided (1 - delta) Clopper-Pearson bound on the false-abstention rate; `tested`:
    bars tested; `reason`: why nothing is certified, or None.
    """

    threshold: float | None
    n: int
    refused: int
    p_value: float | None
    upper: float | None
    tested: int
    alpha: float = ALPHA
    delta: float = DELTA
    reason: str | None = None


def certify_bar(
    scores: list[float],
    *,
    groups: list[str] | None = None,
    alpha: float = ALPHA,
    delta: float = DELTA,
    grid: tuple[float, ...] = GRID,
) -> BarCertificate:
    """The highest bar of `grid` (ascending) that refuses fewer than `alpha` of answerable questions
    with probability >= 1 - delta, by fixed-sequence testing from the loosest (module docstring).

    `scores`: the best evidence score of each answerable question (a question the retrieval found
    nothing for scores 0 or less). `groups`: each question's article, or None for independent
    questions. Questions of one article share its retrieval, so with `groups` each bar's test is
    taken on effective counts: n and k divided by the design effect of the refusal indicator
    (eval.stats.design_effect, at least 1), the binomial's CDF through the regularised incomplete
    beta function (real-valued counts); `p_value` and `upper` are then the effective ones.
    Raises ValueError when `grid` is not ascending or `groups` is not one per score.
    """
    if list(grid) != sorted(grid):
        raise ValueError("The grid of bars must be ascending (loosest first).")
    if groups is not None and len(groups) != len(scores):
        raise ValueError(f"{len(scores)} scores but {len(groups)} groups.")
    values = np.asarray(scores, dtype=float)
    n = len(values)
    bars = np.asarray(grid, dtype=float)
    refused = np.searchsorted(np.sort(values), bars, side="left")  # scores < bar
    deff = np.ones(len(grid))
    if groups is not None and n:
        for j, bar in enumerate(bars):
            if 0 < refused[j] < n:
                deff[j] = stats.design_effect((values < bar).astype(float).tolist(), groups)
    n_eff, k_eff = n / deff, refused / deff
    p_values = betainc(np.maximum(n_eff - k_eff, 1e-12), k_eff + 1, 1 - alpha) if n else np.ones(len(grid))
    p_values = np.where(refused >= n, 1.0, p_values)
    failed = np.flatnonzero(p_values > delta)
    stop = int(failed[0]) if len(failed) else len(grid)
    if stop == 0:
        return BarCertificate(
            None, n, 0, None, None, 1, alpha, delta,
            reason=f"{n} answerable questions cannot show fewer than {alpha:.0%} refused at "
            f"{1 - delta:.0%} confidence (at least {min_accepted(alpha, delta)} are needed)",
        )  # fmt: skip
    last = stop - 1
    k = int(refused[last])
    upper = float(beta.ppf(1 - delta, k_eff[last] + 1, n_eff[last] - k_eff[last]))
    return BarCertificate(
        float(grid[last]), n, k, float(p_values[last]), upper, min(stop + 1, len(grid)), alpha, delta,
    )  # fmt: skip


def load(runs: list[Path]) -> list[dict]:
    """One row per question answered in `runs` (journal.jsonl, or results.jsonl): id, lang, part
    (eval.questions.part_of), article, best score (0 when nothing was retrieved), whether it was
    asked held out (unanswerable), whether the answer abstained and whether the reader's rules did.
    Raises FileNotFoundError for a run folder with neither file (eval.signals.records)."""
    rows = []
    for run in runs:
        for rec in signals.records(run)[1]:
            answer = rec.get("answer")
            if not answer or rec.get("system", "ours") != "ours":
                continue
            retrieval_abstained = answer["abstained"] and (answer.get("note") or "").startswith(WEAK_NOTE)
            rows.append(
                {
                    "inputs": qconfidence.abstention_inputs(rec.get("retrieval_signals") or {}),
                    "id": rec["id"],
                    "lang": rec["lang"],
                    "part": part_of(rec.get("doc")),
                    "article": rec.get("doc"),
                    "score": float(rec.get("best_score") or 0.0),
                    "unanswerable": bool(rec.get("unanswerable")),
                    "abstained": bool(answer["abstained"]),
                    "reader_abstained": bool(answer["abstained"]) and not retrieval_abstained,
                    "run": run.name,
                }
            )
    return rows


def answerable_once(rows: list[dict]) -> list[dict]:
    """The answerable rows, a question asked in several runs counted once (its first row)."""
    seen, out = set(), []
    for r in rows:
        if not r["unanswerable"] and r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    return out


def _share(k: int, n: int) -> dict:
    low, high = stats.wilson(k, n) if n else (0.0, 1.0)
    return {
        "k": k,
        "n": n,
        "rate": round(k / n, 4) if n else None,
        "low": round(low, 4),
        "high": round(high, 4),
    }


def rates(rows: list[dict], bar: float) -> dict:
    """At `bar`, on `rows` (one language and part): the answerable questions refused (false
    abstentions) and the held-out ones refused, by the quote alone."""
    answerable = [r for r in rows if not r["unanswerable"]]
    held = [r for r in rows if r["unanswerable"]]
    return {
        "false_abstentions": _share(sum(r["score"] < bar for r in answerable), len(answerable)),
        "unanswerable_abstained": _share(sum(r["score"] < bar for r in held), len(held)),
    }


def with_reader(rows: list[dict], bar: float) -> dict:
    """False abstentions of the whole pipeline at `bar` on answerable `rows` of runs made with the
    short answer on: refused by the quote's bar, or abstained by the reader's rules (recorded; the
    reader saw the same evidence, so its verdict is replayed as it was)."""
    answerable = [r for r in rows if not r["unanswerable"]]
    return _share(sum(r["score"] < bar or r["reader_abstained"] for r in answerable), len(answerable))


# The logistic regression's inverse L2 strength on standardised inputs (scikit-learn's C).
ADJUST_C = 1.0


def fit_adjustment(rows: list[dict], features: tuple[str, ...], *, c: float = ADJUST_C, source: str = ""):
    """A qa.confidence.Adjustment of the best score by `features`, fitted on `rows` (`load` rows of
    one language: answerable ones are positives, held-out ones negatives) by an L2 logistic
    regression on standardised inputs, its weights then divided by the best score's so that the
    adjusted score stays in the best score's units, centred on the rows' means.

    Raises ValueError when a row lacks an input (a run made before its signals were recorded), when
    either class is empty, or when the best score does not raise the odds of an answer (its weight
    is not positive, so no adjustment in its units exists).
    """
    from sklearn.linear_model import LogisticRegression

    unknown = [n for n in features if n not in qconfidence.ABSTENTION_INPUTS]
    if unknown:
        raise ValueError(
            f"No retrieval signal is called {', '.join(unknown)}; the names are {', '.join(qconfidence.ABSTENTION_INPUTS)}."
        )
    names = ("best", *features)
    if any(not all(n in r["inputs"] for n in names) for r in rows):
        raise ValueError("Some rows hold no retrieval signals: make the runs again with this code.")
    y = np.array([not r["unanswerable"] for r in rows])
    if y.all() or not y.any():
        raise ValueError("The adjustment needs both answerable and held-out questions.")
    x = np.array([[r["inputs"][n] for n in names] for r in rows], dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    weights = model.coef_[0] / scale
    if weights[0] <= 0:
        raise ValueError("The best evidence score does not raise the odds of an answer on these rows.")
    return qconfidence.Adjustment(
        {n: round(float(w / weights[0]), 6) for n, w in zip(features, weights[1:], strict=True)},
        {n: round(float(m), 6) for n, m in zip(features, mean[1:], strict=True)},
        source,
    )


def rescore(rows: list[dict], adjustment) -> list[dict]:
    """`rows` with "score" replaced by `adjustment`'s score of their inputs (the rest kept); a row the
    retrieval found nothing for keeps its score. Raises ValueError for a row without its signals."""
    out = []
    for r in rows:
        if not r["inputs"]:
            if r["score"] > 0:
                raise ValueError(
                    f"Question {r['id']} holds no retrieval signals: make the runs again with this code."
                )
            out.append(r)
            continue
        out.append({**r, "score": adjustment.score(r["inputs"])})
    return out


def build(
    answerable: list[dict],
    held: list[dict],
    current: dict[str, float],
    *,
    reader: list[dict] = (),
    adjust: tuple[str, ...] = (),
    adjust_on: list[dict] | None = None,
    alpha: float = ALPHA,
    delta: float = DELTA,
) -> dict:
    """The certificate per language (fit and certify parts pooled), and what the certified bar and
    the `current` one ({lang: bar}) refuse on the report part. `answerable` and `held` are `load`
    rows of runs asked normally and held out (a question asked in several answerable runs counts
    once); `reader`: rows of runs made with the short answer on, for the whole pipeline's false
    abstentions (`with_reader`). With `adjust` (qa.confidence.abstention_inputs names), the score is
    adjusted per language by `fit_adjustment`, fitted on `adjust_on` (`load` rows of runs of other
    articles, e.g. the dev set and its held-out twin: then the fit and certify parts still certify
    together) or, when it is None, on the fit part (then the bar is certified on the certify part
    alone); each language's entry then holds its "adjustment"."""
    ans = answerable_once(answerable)
    entry = {
        "about": "The quote's abstention bar per question language, certified by eval.abstention "
        "(`python -m eval certify-abstention`): with probability >= 1 - delta, fewer than alpha of "
        "answerable questions like the calibration set's are refused by it.",
        "measured_on": f"{len(ans)} answerable, {len(held)} held-out questions, {dt.date.today().isoformat()}",
        "alpha": alpha,
        "delta": delta,
        "languages": {},
    }
    for lang in LANGS:
        adjustment, cert_parts, reader_skipped = None, ("fit", "certify"), None
        if adjust and any(r["lang"] == lang for r in ans):  # a language no run asked certifies nothing anyway
            if adjust_on is None:
                fit_rows, where = (
                    [r for r in ans + held if r["lang"] == lang and r["part"] == "fit"],
                    "fit part",
                )
                cert_parts = ("certify",)
            else:
                fit_rows, where = [r for r in adjust_on if r["lang"] == lang], "other runs"
            adjustment = fit_adjustment(
                fit_rows, adjust, source=f"{where}: {len(fit_rows)} questions, {dt.date.today().isoformat()}"
            )
            ans_l, held_l = (
                rescore([r for r in rows if r["lang"] == lang], adjustment) for rows in (ans, held)
            )
            try:
                reader_l = rescore([r for r in reader if r["lang"] == lang], adjustment)
            except ValueError:  # runs with the short answer on made before the signals were recorded
                reader_l, reader_skipped = [], "the --reader runs hold no retrieval signals"
        else:
            ans_l, held_l, reader_l = ([r for r in rows if r["lang"] == lang] for rows in (ans, held, reader))
        cert_rows = [r for r in ans_l if r["part"] in cert_parts]
        cert = certify_bar(
            [r["score"] for r in cert_rows],
            groups=[r["article"] for r in cert_rows],
            alpha=alpha,
            delta=delta,
        )
        report = [r for r in ans_l + held_l if r["part"] == "report"]
        certify_part = [r for r in ans_l + held_l if r["part"] in cert_parts]
        lang_entry = {
            "certificate": asdict(cert),
            "current_bar": current.get(lang),
            "certified_on": cert_parts,
        }
        if adjustment is not None:
            lang_entry["adjustment"] = asdict(adjustment)
        if reader_skipped:
            lang_entry["with_reader_skipped"] = reader_skipped
        # Held-out questions never choose the bar; with an adjustment, those of the fit part fitted it.
        held_reporting = [r for r in held_l if r["part"] in cert_parts or r["part"] == "report"]
        for name, bar in (("certified", cert.threshold), ("current", current.get(lang))):
            if bar is None:
                continue
            lang_entry[name] = {
                "bar": bar,
                "report": rates(report, bar),
                "certify_parts": rates(certify_part, bar),
                "held_out_all_parts": rates(held_reporting, bar)["unanswerable_abstained"],
            }
            if reader_l:
                lang_entry[name]["with_reader"] = {
                    "report": with_reader([r for r in reader_l if r["part"] == "report"], bar),
                    "certify_parts": with_reader([r for r in reader_l if r["part"] in cert_parts], bar),
                }
        entry["languages"][lang] = lang_entry
    return entry


def write_bars(entry: dict, path: Path | None = None) -> None:
    """Put the certified bars of `entry` (`build`) under "abstention" in the calibrations file, the
    short answer's calibrations kept; a language with nothing certified gets threshold None."""
    path = path or CALIBRATIONS
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    bars = {}
    for lang, info in entry["languages"].items():
        cert = info["certificate"]
        bars[lang] = {k: cert[k] for k in ("threshold", "n", "refused", "upper", "alpha", "delta", "reason")}
    data["abstention"] = {"about": entry["about"], "measured_on": entry["measured_on"], "bars": bars}
    adjustments = {
        lang: info["adjustment"] for lang, info in entry["languages"].items() if info.get("adjustment")
    }
    if adjustments:
        data["abstention"]["adjustments"] = adjustments
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def curves(rows: list[dict], lang: str) -> dict[str, list[tuple[float, float]]]:
    """(bar, share refused) over `GRID` for one language's answerable and held-out rows."""
    out = {}
    for name, keep in (("answerable", False), ("held out", True)):
        scores = np.sort([r["score"] for r in rows if r["lang"] == lang and r["unanswerable"] == keep])
        if len(scores):
            out[name] = [(b, float(np.searchsorted(scores, b, side="left") / len(scores))) for b in GRID]
    return out


def plot(answerable: list[dict], held: list[dict], entry: dict, path: Path) -> None:
    """Per language: the share of answerable and of held-out questions refused at each bar (all parts),
    the promise (alpha), the certified bar and the bar in use (the settings')."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, lang in zip(axes, LANGS, strict=True):
        info = entry["languages"][lang]
        rows = [r for r in answerable_once(answerable) + held if r["lang"] == lang]
        if info.get("adjustment"):
            a = info["adjustment"]
            rows = rescore(rows, qconfidence.Adjustment(a["weights"], a["center"], a["source"]))
        for (name, curve), colour in zip(curves(rows, lang).items(), ("tab:blue", "tab:red")):
            n = sum(r["lang"] == lang and r["unanswerable"] == (name == "held out") for r in rows)
            ax.plot(
                [b for b, _ in curve], [s for _, s in curve], color=colour, label=f"{name} refused (n={n})"
            )
        ax.axhline(
            entry["alpha"], color="black", ls="--", lw=1, label=f"promise: under {entry['alpha']:.0%} refused"
        )
        bar = info["certificate"]["threshold"]
        if bar is not None:
            ax.axvline(bar, color="tab:green", lw=1.2, label=f"certified bar {bar:.3f}")
        if info.get("current_bar") is not None:
            ax.axvline(
                info["current_bar"],
                color="gray",
                ls=":",
                lw=1.2,
                label=f"bar in use {info['current_bar']:.3f}",
            )
        score = "adjusted best evidence score" if info.get("adjustment") else "best evidence score"
        ax.set(xlabel=f"bar on the {score}", title=f"{lang} questions", xlim=(0.2, 0.8))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center right")
    axes[0].set(ylabel="share of questions the quote refuses")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
