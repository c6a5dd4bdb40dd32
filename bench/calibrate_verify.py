"""Calibrate the checks of `qa/verify.py` through their own call paths, on data kept in eval/calibration/.

`python -m bench.calibrate_verify build` writes `eval/calibration/rendering-pairs.jsonl` from the dev
benchmark (parallel English/Arabic answers and questions, and shuffled pairs with a fixed seed).
`python -m bench.calibrate_verify [rendering] [names] [support]` (all three by default) measures:
- rendering: `check_rendering` on every pair, for each choice of query/document prompts, then the
  acceptance curve of the shipped choice per level (span, sentence): writes
  `eval/calibration/rendering.json` and `rendering.png`, with 2-fold cross-validation over the dev
  articles (the threshold chosen on one half, measured on the other, Wilson 95% intervals);
- names: the name check of `verify()` (`name_support`) on `names.jsonl`: names the seed article
  spells (in Arabic) against their sentence, and names it never mentions against every sentence;
- support: `verify()` itself on `support.jsonl` (hand-written faithful answers against their seed
  sentence, and the same answers against the other sentences): the curve of `SUPPORT_THRESHOLD`.
Names and support write `eval/calibration/verify.json`. The constants in qa/verify.py cite these files.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import time
import zlib
from collections import defaultdict
from pathlib import Path

from qa import verify as qverify
from qa.config import SEED_DOCUMENT
from qa.embeddings import load_embedder

CAL = Path(__file__).resolve().parent.parent / "eval" / "calibration"
DEV = Path(__file__).resolve().parents[2] / "shared" / "eval-data" / "arabic-qa-dev"
PAIRS = CAL / "rendering-pairs.jsonl"
THRESHOLDS = [round(0.30 + i / 100, 2) for i in range(61)]  # 0.30 .. 0.90
TARGET = 0.05  # at most this share of wrong pairs may be accepted
RANDOM_SEED = 20160909  # the dev benchmark's own seed
SHUFFLED_PER_PAIR = 3
SAME_ARTICLE_PER_PAIR = 2
NEGATIVE_KINDS = ("shuffled", "same-article")
NEGATIVE_KEYS = [f"negatives_{k}" for k in NEGATIVE_KINDS]
PROMPT_CHOICES = [("query", "query"), ("query", "document"), ("document", "document"), ("document", "query")]


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _list(value) -> list[str]:
    """A list of strings, whether stored as a list or as its string form ("['a', 'b']")."""
    if isinstance(value, str):
        value = ast.literal_eval(value) if value.startswith("[") else [value]
    return [str(v) for v in value or []]


def build_pairs(dev: Path = DEV) -> list[dict]:
    """Positive and negative (English rendering, Arabic source) pairs, span and sentence level.

    Positives: the parallel answers (answers_en[0], answers[0]) and questions (English, Arabic) of
    every XQuAD/MLQA `pair_id`. Negatives, for each positive: `SHUFFLED_PER_PAIR` sources of random
    other pairs and `SAME_ARTICLE_PER_PAIR` of other pairs from the same article (hard negatives),
    never one whose Arabic or English text equals the positive's.
    """
    items: dict[str, dict] = {}
    for row in _read_jsonl(dev / "questions.jsonl"):
        if row.get("source") not in ("xquad", "mlqa") or not row.get("answers_en"):
            continue
        item = items.setdefault(row["pair_id"], {"pair_id": row["pair_id"], "article": row["article"]})
        item["question_" + row["question_lang"]] = row["question"]
        item["span_ar"] = _list(row["answers"])[0]
        item["span_en"] = _list(row["answers_en"])[0]
    complete = [i for i in items.values() if "question_en" in i and "question_ar" in i]
    rng = random.Random(RANDOM_SEED)
    out = []
    for level, en, ar in (("span", "span_en", "span_ar"), ("sentence", "question_en", "question_ar")):
        for item in complete:
            base = {"level": level, "rendering": item[en], "pair_id": item["pair_id"]}
            out.append({**base, "label": "positive", "kind": "parallel", "source": item[ar]})

            def distinct(other, item=item, en=en, ar=ar) -> bool:
                return (
                    other is not item
                    and other[ar].strip() != item[ar].strip()
                    and other[en].strip().casefold() != item[en].strip().casefold()
                )

            same = [o for o in complete if o["article"] == item["article"] and distinct(o)]
            others = [o for o in complete if o["article"] != item["article"] and distinct(o)]
            for kind, pool, n in (
                ("shuffled", others, SHUFFLED_PER_PAIR),
                ("same-article", same, SAME_ARTICLE_PER_PAIR),
            ):
                for other in rng.sample(pool, min(n, len(pool))):
                    row = {**base, "label": "negative", "kind": kind, "source": other[ar]}
                    out.append({**row, "source_pair_id": other["pair_id"]})
    return out


def write_pairs() -> None:
    pairs = build_pairs()
    with PAIRS.open("w", encoding="utf-8") as f:
        for row in pairs:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = defaultdict(int)
    for row in pairs:
        counts[row["level"], row["kind"]] += 1
    print(f"wrote {len(pairs)} pairs to {PAIRS}: {dict(counts)}")


# Rendering ------------------------------------------------------------------------------------


def _rate(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else float("nan")


def _auc(pos: list[float], neg: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return round(wins / (len(pos) * len(neg)), 4)


def _choose(curve: list[dict], neg_keys: list[str], pos_key: str) -> dict:
    """Among the thresholds at which every kind of negative is accepted at most TARGET, the one that
    accepts the most positives; of equals, the highest (the fewest negatives)."""
    ok = [row for row in curve if all(row[k] <= TARGET for k in neg_keys)]
    return max(reversed(ok), key=lambda row: row[pos_key]) if ok else curve[-1]


def _prompt_summary(rows: list[dict], *, positives: str) -> dict:
    """One prompt choice's curve in brief: AUC, the threshold at TARGET, and the positives passing
    there (under the key `positives`)."""
    best = _at_target(rows)
    return {
        "auc": _auc(
            [r["similarity"] for r in rows if r["label"] == "positive"],
            [r["similarity"] for r in rows if r["label"] == "negative"],
        ),
        "threshold_at_target": best["threshold"],
        positives: best["positives"],
    }


def _at_target(rows: list[dict]) -> dict:
    """Off the grid, for comparing prompt choices: the lowest cosine at which at most TARGET of each
    kind of negative passes the whole check, and the share of positives that pass there."""
    pos = [r for r in rows if r["label"] == "positive"]
    kinds = [[r for r in rows if r["kind"] == k] for k in NEGATIVE_KINDS]
    kinds = [neg for neg in kinds if neg]
    for t in sorted({r["similarity"] for r in rows}):
        if all(_rate([r["numbers_agree"] and r["similarity"] >= t for r in neg]) <= TARGET for neg in kinds):
            return {
                "threshold": t,
                "positives": _rate([r["numbers_agree"] and r["similarity"] >= t for r in pos]),
            }
    return {"threshold": None, "positives": 0.0}


def _checked(pairs: list[dict], embedder, **kwargs) -> list[dict]:
    """Each pair with `check_rendering`'s verdict (the call the product makes)."""
    out = []
    for p in pairs:
        check = qverify.check_rendering(p["rendering"], p["source"], embedder=embedder, **kwargs)
        out.append(
            {**p, "ok": check.ok, "similarity": check.similarity, "numbers_agree": not check.missing_numbers}
        )
    return out


def _curve(rows: list[dict]) -> list[dict]:
    """Acceptance (numbers agree and similarity >= t) of positives and negatives at each threshold."""
    pos = [r for r in rows if r["label"] == "positive"]
    neg = [r for r in rows if r["label"] == "negative"]
    by_kind = {k: [r for r in neg if r["kind"] == k] for k in NEGATIVE_KINDS}

    def acc(subset, t):
        return _rate([r["numbers_agree"] and r["similarity"] >= t for r in subset])

    return [
        {
            "threshold": t,
            "positives": acc(pos, t),
            "negatives": acc(neg, t),
            **{f"negatives_{k}": acc(v, t) for k, v in by_kind.items()},
        }
        for t in THRESHOLDS
    ]


def _one_threshold(curves: dict[str, list[dict]]) -> float:
    """One threshold for every level if one serves: `_choose`'s rule on all the levels' curves at
    once (the mean of their positives, the worst of their negatives)."""
    levels = list(curves)
    both = [
        {
            "threshold": row["threshold"],
            "positives": sum(curves[lv][i]["positives"] for lv in levels) / len(levels),
            "negatives_max": max(curves[lv][i][k] for lv in levels for k in NEGATIVE_KEYS),
        }
        for i, row in enumerate(curves[levels[0]])
    ]
    return _choose(both, ["negatives_max"], "positives")["threshold"]


def calibrate_rendering(embedder, pairs: list[dict]) -> dict:
    levels = ("span", "sentence")
    shipped = qverify.RENDERING_PROMPTS
    prompts = {}
    try:  # the same call path with each prompt choice; the cache keys include the prompt
        for choice in PROMPT_CHOICES:
            qverify.RENDERING_PROMPTS = choice
            rows = _checked(pairs, embedder, threshold=0.0)
            summary = {}
            for level in levels:
                sub = [r for r in rows if r["level"] == level]
                summary[level] = _prompt_summary(sub, positives="positives_at_target")
            prompts["/".join(choice)] = summary
            print("prompts", choice, json.dumps(summary), flush=True)
    finally:
        qverify.RENDERING_PROMPTS = shipped

    # The shipped choice: the curves, the chosen point, and the default call (no threshold given).
    rows = _checked(pairs, embedder, threshold=0.0)
    defaults = _checked(pairs, embedder)
    curves = {level: _curve([r for r in rows if r["level"] == level]) for level in levels}
    per_level = {
        level: _choose(curve, NEGATIVE_KEYS, "positives")["threshold"] for level, curve in curves.items()
    }
    t = _one_threshold(curves)
    out = {
        "data": str(PAIRS.relative_to(CAL.parent.parent)),
        "target": f"each kind of negative (shuffled; same-article) accepted <= {TARGET:.0%}",
        "prompts_compared": prompts,
        "prompts": "/".join(shipped) + " (rendering/source)",
        "lowest_threshold_meeting_target": per_level,
        "chosen_threshold": t,
        "why": (
            f"Of the thresholds at which every kind of wrong pair (shuffled; same-article) is accepted at most "
            f"{TARGET:.0%} at both levels, {t} accepts the most true renderings (mean of the levels; of "
            f"equals, the highest). Each level alone: "
            + ", ".join(f"{lv} {th}" for lv, th in per_level.items())
            + (
                "; one threshold serves both, with the same true renderings accepted as its own would."
                if all(
                    next(r for r in curves[lv] if r["threshold"] == t)["positives"]
                    == next(r for r in curves[lv] if r["threshold"] == per_level[lv])["positives"]
                    for lv in levels
                )
                else "; a single threshold costs some true renderings at one level."
            )
        ),
        "shipped_threshold": qverify.RENDERING_THRESHOLD,
        "cross_validated_by_article": held_out_rendering(rows, _articles()) if DEV.is_dir() else None,
        "levels": {},
    }
    for level in levels:
        sub = [r for r in rows if r["level"] == level]
        pos = [r for r in sub if r["label"] == "positive"]
        neg = [r for r in sub if r["label"] == "negative"]
        dsub = [r for r in defaults if r["level"] == level]

        def accepted(r):
            return r["numbers_agree"] and r["similarity"] >= t

        out["levels"][level] = {
            "n_positives": len(pos),
            "n_negatives": {k: sum(r["kind"] == k for r in neg) for k in NEGATIVE_KINDS},
            "auc": _auc([r["similarity"] for r in pos], [r["similarity"] for r in neg]),
            "positives_numbers_disagree": _rate([not r["numbers_agree"] for r in pos]),
            "negatives_numbers_disagree": _rate([not r["numbers_agree"] for r in neg]),
            "at_chosen": next(row for row in curves[level] if row["threshold"] == t),
            "default_call": {
                "positives": _rate([r["ok"] for r in dsub if r["label"] == "positive"]),
                **{
                    f"negatives_{k}": _rate([r["ok"] for r in dsub if r["kind"] == k]) for k in NEGATIVE_KINDS
                },
            },
            "rejected_positives_at_chosen": [
                {"rendering": r["rendering"], "source": r["source"], "similarity": r["similarity"]}
                for r in pos
                if not accepted(r)
            ],
            "accepted_negatives_at_chosen": [
                {"rendering": r["rendering"], "source": r["source"], "similarity": r["similarity"]}
                for r in neg
                if accepted(r)
            ],
            "curve": curves[level],
        }
    return out


def _articles(dev: Path = DEV) -> dict[str, str]:
    """pair_id -> article, from the dev benchmark's questions (the pairs file keeps only pair ids)."""
    return {r["pair_id"]: r["article"] for r in _read_jsonl(dev / "questions.jsonl") if r.get("pair_id")}


def held_out_rendering(rows: list[dict], articles: dict[str, str]) -> dict:
    """2-fold cross-validation over articles (crc32 of the article name): the one-threshold rule of
    `calibrate_rendering` chosen on one half's pairs, measured on the other's; the two held-out
    halves pooled per level, each share with its Wilson 95% interval (eval/stats.py)."""
    from eval import stats

    levels = ("span", "sentence")
    fold_of = {pid: zlib.crc32(a.encode()) % 2 for pid, a in articles.items()}
    folds = [[r for r in rows if fold_of.get(r["pair_id"]) == k] for k in (0, 1)]
    chosen, counts = [], defaultdict(lambda: [0, 0])
    for k in (0, 1):
        train, test = folds[1 - k], folds[k]
        t = _one_threshold({lv: _curve([r for r in train if r["level"] == lv]) for lv in levels})
        chosen.append(t)
        for r in test:
            kind = "positive" if r["label"] == "positive" else r["kind"]
            cell = counts[r["level"], kind]
            cell[0] += bool(r["numbers_agree"] and r["similarity"] >= t)
            cell[1] += 1
    pooled = {}
    for (level, kind), (k, n) in sorted(counts.items()):
        low, high = stats.wilson(k, n)
        pooled.setdefault(level, {})[kind] = {
            "accepted": k,
            "n": n,
            "share": round(k / n, 4),
            "ci": [round(low, 4), round(high, 4)],
        }
    return {"thresholds_chosen_by_fold": chosen, "held_out": pooled}


def plot_rendering(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = result["levels"]
    fig, axes = plt.subplots(1, len(levels), figsize=(8, 3.2), sharey=True)
    for ax, (level, data) in zip(axes, levels.items()):
        ts = [row["threshold"] for row in data["curve"]]
        for key, label in (
            ("positives", "parallel (true)"),
            ("negatives_shuffled", "shuffled"),
            ("negatives_same-article", "same article"),
        ):
            ax.plot(ts, [row[key] for row in data["curve"]], label=label)
        t = result["chosen_threshold"]
        ax.axvline(t, color="grey", linestyle="--", linewidth=1)
        ax.axhline(TARGET, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{level}: threshold {t:.2f}", fontsize=9)
        ax.set_xlabel("cosine threshold", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("accepted by check_rendering", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# Names and support ------------------------------------------------------------------------------


def seed_sentences() -> list[str]:
    from qa import text as qtext

    text = SEED_DOCUMENT.read_text(encoding="utf-8")
    return [text[s.start : s.end] for s in qtext.sentences(text)]


def calibrate_names(embedder) -> dict:
    """`name_support` (the name check of verify()) at each threshold: names the seed spells, against
    their sentence, and names it never mentions, against every sentence one at a time (as verify
    sees a cited sentence)."""
    sentences = seed_sentences()
    rows = _read_jsonl(CAL / "names.jsonl")
    pos = [(r["name"], [sentences[r["sentence"]]]) for r in rows if r["label"] == "in-evidence"]
    neg = [(r["name"], [s]) for r in rows if r["label"] != "in-evidence" for s in sentences]
    t0 = time.perf_counter()
    default = {
        "in_evidence": [qverify.name_support(n, ev, embedder=embedder) for n, ev in pos],
        "absent": [qverify.name_support(n, ev, embedder=embedder) for n, ev in neg],
    }
    seconds = time.perf_counter() - t0
    curve = []
    for t in THRESHOLDS:
        p = [qverify.name_support(n, ev, embedder=embedder, threshold=t) for n, ev in pos]
        q = [qverify.name_support(n, ev, embedder=embedder, threshold=t) for n, ev in neg]
        curve.append(
            {
                "threshold": t,
                "in_evidence": _rate([bool(h) for h in p]),
                "absent_per_sentence": _rate([bool(h) for h in q]),
                "absent_names_by_some_sentence": _rate(
                    [any(q[i : i + len(sentences)]) for i in range(0, len(q), len(sentences))]
                ),
            }
        )
    chosen = _choose(curve, ["absent_per_sentence"], "in_evidence")
    absent = defaultdict(dict)
    for (n, ev), how in zip(neg, default["absent"]):
        if how:
            absent[n][sentences.index(ev[0])] = how
    return {
        "data": "eval/calibration/names.jsonl",
        "target": f"absent names accepted for at most {TARGET:.0%} of (name, sentence) pairs",
        "chosen": chosen,
        "shipped": {
            "NAME_RENDERING_THRESHOLD": qverify.NAME_RENDERING_THRESHOLD,
            "NAME_SHORTLIST": qverify.NAME_SHORTLIST,
            "SKELETON_THRESHOLD": qverify.SKELETON_THRESHOLD,
        },
        "default_call": {
            "in_evidence": f"{sum(map(bool, default['in_evidence']))}/{len(pos)}",
            "absent_per_sentence": f"{sum(map(bool, default['absent']))}/{len(neg)}",
            "absent_names_by_some_sentence": f"{len(absent)}/{len(neg) // len(sentences)}",
            "seconds_first_pass": round(seconds, 1),
        },
        "in_evidence": {n: how for (n, _), how in zip(pos, default["in_evidence"])},
        "absent_accepted": absent,
        "curve": curve,
    }


def _verified(rows: list[dict], embedder) -> list[dict]:
    """Each row with verify()'s verdict: ok, reason, the lowest sentence similarity, and whether
    the checks other than similarity (citations, numbers, names) pass."""
    out = []
    for row in rows:
        verdict = qverify.verify(row["answer"], row["evidence"], question=row["question"], embedder=embedder)
        checks = verdict.checks
        others = bool(checks) and all(
            c.cites and not c.missing_numbers and not c.missing_names for c in checks
        )
        similarity = min((c.similarity for c in checks), default=0.0)
        out.append(
            {**row, "ok": verdict.ok, "reason": verdict.reason, "similarity": similarity, "others": others}
        )
    return out


def calibrate_support(embedder) -> dict:
    """verify() on hand-written faithful answers and on the same answers against other sentences."""
    rows = _read_jsonl(CAL / "support.jsonl")
    langs = ("en", "ar")
    shipped = qverify.SUPPORT_PROMPTS
    prompts = {}
    try:  # the similarity signal alone, under each prompt choice
        for choice in PROMPT_CHOICES:
            qverify.SUPPORT_PROMPTS = choice
            done = _verified(rows, embedder)
            summary = {}
            for lang in langs:
                sub = [
                    {**r, "numbers_agree": True, "kind": r["label"], "label": "positive"}
                    if r["label"] == "faithful"
                    else {**r, "numbers_agree": True, "kind": "shuffled", "label": "negative"}
                    for r in done
                    if r["lang"] == lang
                ]
                summary[lang] = _prompt_summary(sub, positives="faithful_at_target")
            prompts["/".join(choice)] = summary
            print("prompts", choice, json.dumps(summary), flush=True)
    finally:
        qverify.SUPPORT_PROMPTS = shipped

    done = _verified(rows, embedder)
    pos = [r for r in done if r["label"] == "faithful"]

    def acc(subset, t):
        return _rate([r["others"] and r["similarity"] >= t for r in subset])

    neg = {lang: [r for r in done if r["label"] == "mismatched" and r["lang"] == lang] for lang in langs}
    curve = [
        {
            "threshold": t,
            "faithful": acc(pos, t),
            **{f"faithful_{lang}": acc([r for r in pos if r["lang"] == lang], t) for lang in langs},
            **{f"mismatched_{lang}": acc(neg[lang], t) for lang in langs},
        }
        for t in THRESHOLDS
    ]
    chosen = _choose(curve, [f"mismatched_{lang}" for lang in langs], "faithful")
    return {
        "data": "eval/calibration/support.jsonl",
        "target": f"mismatched answers accepted by verify() <= {TARGET:.0%} in each language",
        "prompts_compared": prompts,
        "prompts": "/".join(shipped) + " (answer sentence/evidence)",
        "n": {"faithful": len(pos), **{f"mismatched_{lang}": len(neg[lang]) for lang in langs}},
        "faithful_similarity_min_max": [min(r["similarity"] for r in pos), max(r["similarity"] for r in pos)],
        "mismatched_caught_by_names_or_numbers": {
            lang: _rate([not r["others"] for r in neg[lang]]) for lang in langs
        },
        "chosen": chosen,
        "shipped": {"SUPPORT_THRESHOLD": qverify.SUPPORT_THRESHOLD},
        "default_call": {
            **{f"faithful_{lang}": _rate([r["ok"] for r in pos if r["lang"] == lang]) for lang in langs},
            **{f"mismatched_{lang}": _rate([r["ok"] for r in neg[lang]]) for lang in langs},
        },
        "rejected_faithful": [
            {"id": r["id"], "similarity": r["similarity"], "reason": r["reason"]} for r in pos if not r["ok"]
        ],
        "accepted_mismatched": [
            {"id": r["id"], "similarity": r["similarity"]} for lang in langs for r in neg[lang] if r["ok"]
        ],
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", help="build, rendering, names, support (default: the last three)")
    args = parser.parse_args(argv)
    if unknown := set(args.what) - {"build", "rendering", "names", "support"}:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    what = args.what or ["rendering", "names", "support"]
    if "build" in what:
        write_pairs()
        what = [w for w in what if w != "build"]
    if not what:
        return 0
    from qa.config import Settings

    s = Settings(_env_file=None)
    embedder = load_embedder(s.embedding_model, s.models_dir, s.threads)
    if "rendering" in what:
        t0 = time.perf_counter()
        result = calibrate_rendering(embedder, _read_jsonl(PAIRS))
        result["seconds"] = round(time.perf_counter() - t0, 1)
        (CAL / "rendering.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
        plot_rendering(result, CAL / "rendering.png")
        for level, data in result["levels"].items():
            print(level, {k: data[k] for k in ("auc", "at_chosen", "default_call")}, flush=True)
        print("chosen", result["chosen_threshold"], "shipped", result["shipped_threshold"], flush=True)
    path = CAL / "verify.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    if "names" in what:
        results["names"] = calibrate_names(embedder)
        names = results["names"]
        print({k: names[k] for k in ("chosen", "default_call", "in_evidence", "absent_accepted")}, flush=True)
    if "support" in what:
        results["support"] = calibrate_support(embedder)
        support = results["support"]
        print({k: support[k] for k in ("chosen", "default_call", "rejected_faithful")}, flush=True)
    if "names" in what or "support" in what:
        path.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
