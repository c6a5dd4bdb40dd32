"""Calibrate and report the word-level verifier (qa/wordcheck.py) on professional translations.

`python -m bench.calibrate_wordcheck [--before]`: the 685 Arabic sentences of
../shared/eval-data/arabic-qa-calib/parallel-sentences.jsonl with their English originals (XQuAD,
CC BY-SA 4.0), split by article (crc32 of the title, even: calibration half, odd: report half;
never tuned on the report half). For each sentence: the faithful reference, and synthetic
corruptions of it (`corrupt`): a name swapped for another name of the same article, a number
changed, a negation added or removed, a name replaced by a plausible entity from outside the
article ("Kremlin" → "Kurds"), a relation word inverted ("with" → "against", "before" → "after"),
one content word replaced by an unrelated one. Every rendering is checked once with the alignment
witness (qa.align) at threshold 0, keeping each aligned word's cosine, so that any threshold can be
applied afterwards. On the calibration half the sentence bar (`qa.wordcheck.SENTENCE_SHARE`) is
chosen: the lowest share of supported words at which at least `TARGET_UNRELATED` of
unrelated-word corruptions are refused (`choose_bar`), for each alignment threshold of
`ALIGN_GRID` and with the witness off; the threshold (`qa.wordcheck.ALIGN_THRESHOLD`) is the one
whose bar lets the most faithful references pass (`choose_threshold`). The report half is then
scored at the shipped threshold and bar, and with the witness off at its own bar, with McNemar's
exact test between the two on the same renderings (`paired`):
faithful pass rate, supported share of content words, each corruption kind's refusal rate, all
with 95% intervals (Wilson; the word share by a cluster bootstrap over articles), and the time per
rendering. With `--before`, the rendering check shipped before (qa.verify.check_rendering and
qa.translate.unsupported_names with the embedding model) is scored on an even sample of the report
half (`--before-limit`, 120 sentences: its name check is slow), beside the word check on the same.

Writes eval/calibration/wordcheck.json. Leaves out: the local model's own renderings (labelled by
hand, eval/calibration/model-translations.jsonl).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
import zlib
from collections import defaultdict
from pathlib import Path

from eval.stats import bootstrap, mcnemar, wilson
from qa import verify as qverify
from qa import wordcheck

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "eval-data" / "arabic-qa-calib" / "parallel-sentences.jsonl"
OUT = ROOT / "eval" / "calibration" / "wordcheck.json"
TARGET_UNRELATED = 0.85  # the target for a content word replaced by an unrelated one
GRID = [round(x * 0.01, 2) for x in range(0, 101)]  # share bars tried, 0-1 in steps of 0.01
ALIGN_GRID = [round(0.4 + x * 0.025, 3) for x in range(0, 21)]  # alignment thresholds tried, 0.4-0.9
SEED = 30

# Plausible replacements from outside any article: entities a fluent wrong rendering invents.
PLAUSIBLE = """Kurds Bush London NATO Moscow Paris Washington Iran Egypt Obama Microsoft Germany Cairo
Beijing Smith Johnson Harvard Texas Brazil Toyota""".split()
INVERSIONS = {
    "with": "against", "alongside": "against", "against": "alongside", "before": "after",
    "after": "before", "more": "less", "less": "more", "above": "below", "below": "above",
    "increased": "decreased", "decreased": "increased", "won": "lost", "lost": "won",
    "higher": "lower", "lower": "higher", "largest": "smallest", "smallest": "largest",
    "first": "last", "last": "first", "supported": "opposed", "support": "oppose",
}  # fmt: skip
UNRELATED = """banana volcano guitar umbrella penguin bicycle chocolate dolphin tornado violin
pyramid lighthouse cactus helicopter saxophone glacier kangaroo telescope avalanche carnival""".split()
_AUX = re.compile(r"\b(is|are|was|were|has|have|had|will|would|can|could|should|must|did|does|do)\b")
_NEG = re.compile(r"\s*\b(not|never)\b|n't\b", re.I)


def split(title: str) -> str:
    """'calibrate' or 'report': the half an article belongs to (crc32 of its title)."""
    return "report" if zlib.crc32(title.encode("utf-8")) % 2 else "calibrate"


def _names(text: str) -> list[str]:
    return [n for n in qverify.names(text) if not re.search(r"\d", n)]


def corrupt(row: dict, article_names: list[str], rng: random.Random) -> dict[str, str]:
    """The corruptions of one reference translation that apply to it (kind → corrupted English)."""
    en = row["en"]
    out: dict[str, str] = {}
    names = _names(en)
    if names:
        name = rng.choice(names)
        others = [n for n in article_names if n not in en and n.split()[-1] not in en]
        if others:
            out["name_swap"] = en.replace(name, rng.choice(others), 1)
        out["entity_replaced"] = en.replace(name, rng.choice([p for p in PLAUSIBLE if p not in en]), 1)
    numbers = re.findall(r"\b\d+\b", en)
    if numbers:
        n = rng.choice(numbers)
        changed = (
            str(int(n) + rng.choice([1, 2, 3, 10])) if len(n) < 4 else str(int(n) + rng.choice([1, 2, 5]))
        )
        out["number_changed"] = re.sub(rf"\b{n}\b", changed, en, count=1)
    if _NEG.search(en):
        out["negation_removed"] = re.sub(r"\s+", " ", _NEG.sub("", en, count=1)).replace(" .", ".")
    else:
        aux = _AUX.search(en)
        if aux:
            out["negation_added"] = en[: aux.end()] + " not" + en[aux.end() :]
    inversions = [m for m in re.finditer(r"\b[a-z]+\b", en) if m.group() in INVERSIONS]
    if inversions:
        m = rng.choice(inversions)
        out["relation_inverted"] = en[: m.start()] + INVERSIONS[m.group()] + en[m.end() :]
    content = [
        m
        for m in re.finditer(r"\b[a-z]{4,}\b", en)
        if m.group() not in wordcheck.ENGLISH_STOP and m.group() not in INVERSIONS
    ]
    if content:
        m = rng.choice(content)
        out["unrelated_word"] = en[: m.start()] + rng.choice(UNRELATED) + en[m.end() :]
    return out


def _rate(k: int, n: int) -> dict:
    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None, "ci95": [low, high]}


def load() -> list[dict]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_title: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_title[r["title"]].extend(_names(r["en"]))
    rng = random.Random(SEED)
    for r in rows:
        r["half"] = split(r["title"])
        r["corruptions"] = corrupt(r, list(dict.fromkeys(by_title[r["title"]])), rng)
    return rows


def _result(c) -> dict:
    """What a check says, kept so that any alignment threshold can be applied afterwards: the
    rules' verdict, the content words, those a dictionary-side witness supports ("strict"), and the
    cosine of each word the alignment witness supports (at threshold 0: every mutual best pair)."""
    content = [w for w in c.words if w.kind in ("content", "name", "number")]
    return {
        "rules_ok": c.ok,
        "reason": c.reason,
        "n": len(content),
        "strict": sum(w.supported and w.witness != "alignment" for w in content),
        "aligned": [w.similarity for w in content if w.witness == "alignment"],
        "source_share": c.source_share,
    }


def score(rows: list[dict], *, align: bool = True) -> None:
    """Each row's faithful and corrupted renderings checked once, with the alignment witness at
    threshold 0 (`_result`: share and pass at any bar and threshold are computed from it; with the
    witness off a check is the same minus its aligned words, since it only adds support to words
    every other witness left unsupported). The encoder's vectors are computed in batches first."""
    if align:
        from qa import align as qalign
        from qa.config import get_settings

        settings = get_settings()
        aligner = qalign.aligner(settings.models_dir, threads=settings.threads)
        texts = sorted({t for r in rows for t in (r["en"], r["ar"], *r["corruptions"].values())}, key=len)
        t0 = time.perf_counter()
        qalign.CACHE = max(qalign.CACHE, len(texts) + 1)
        for i in range(0, len(texts), 256):
            aligner.prime(texts[i : i + 256], batch_size=16)
            print(f"{i + 256}/{len(texts)} texts encoded ({time.perf_counter() - t0:.0f} s)", flush=True)
    for i, r in enumerate(rows):
        if i % 100 == 0:
            print(f"{i}/{len(rows)} sentences checked", flush=True)
        t0 = time.perf_counter()
        c = wordcheck.check(
            r["en"], r["ar"], min_share=0.0, align=align, align_threshold=0.0, min_source_share=0.0
        )
        r["ms"] = (time.perf_counter() - t0) * 1000
        r["faithful"] = _result(c)
        r["checked"] = {
            kind: _result(
                wordcheck.check(
                    text, r["ar"], min_share=0.0, align=align, align_threshold=0.0, min_source_share=0.0
                )
            )
            for kind, text in r["corruptions"].items()
        }


OFF = 2.0  # an alignment threshold no cosine reaches: the witness off


def share(result: dict, threshold: float = OFF) -> float | None:
    if not result["n"]:
        return None
    return (result["strict"] + sum(s >= threshold for s in result["aligned"])) / result["n"]


def passes(result: dict, bar: float, threshold: float = OFF) -> bool:
    """Checked at this English share bar and alignment threshold, with the source's share bar
    shipped (`qa.wordcheck.SOURCE_SHARE`, fitted by bench.wordcheck_model on the model's own English)."""
    s = share(result, threshold)
    source = result.get("source_share")
    return (
        result["rules_ok"]
        and s is not None
        and s >= bar - 1e-9
        and (source is None or source >= wordcheck.SOURCE_SHARE - 1e-9)
    )


def choose_bar(rows: list[dict], threshold: float = OFF) -> float:
    """The lowest bar at which the calibration half's unrelated-word corruptions are refused at
    least `TARGET_UNRELATED` of the time (the refusal the share bar exists for: names, numbers,
    negations and relations have rules of their own); the highest bar of the grid if none is."""
    judged = [r for r in rows if "unrelated_word" in r["checked"]]
    for bar in GRID:
        refused = sum(not passes(r["checked"]["unrelated_word"], bar, threshold) for r in judged)
        if refused >= TARGET_UNRELATED * len(judged):
            return bar
    return GRID[-1]


def choose_threshold(rows: list[dict]) -> tuple[float, float, list[dict]]:
    """The alignment threshold, with the share bar `choose_bar` sets for it, that lets the most
    faithful references of the calibration half pass (ties: the higher threshold, the stricter
    witness); OFF (the witness off) competes too. Returns (threshold, bar, the curve)."""
    curve = []
    for threshold in [*ALIGN_GRID, OFF]:
        bar = choose_bar(rows, threshold)
        faithful = sum(passes(r["faithful"], bar, threshold) for r in rows) / len(rows)
        curve.append({"threshold": threshold, "bar": bar, "faithful_pass": round(faithful, 4)})
    best = max(curve, key=lambda c: (c["faithful_pass"], c["threshold"]))
    return best["threshold"], best["bar"], curve


def report(rows: list[dict], bar: float, threshold: float = OFF) -> dict:
    kinds = sorted({k for r in rows for k in r["corruptions"]})
    for r in rows:
        f = r["faithful"]
        r["words"] = (f["strict"] + sum(s >= threshold for s in f["aligned"]), f["n"])
    supported = [r["words"][0] for r in rows]
    counts = [r["words"][1] for r in rows]
    rate = sum(supported) / max(1, sum(counts))
    ratio = [s / n for s, n in zip(supported, counts) if n]
    groups = [r["title"] for r in rows if r["words"][1]]
    out = {
        "sentences": len(rows),
        "articles": len({r["title"] for r in rows}),
        "bar": bar,
        "align_threshold": None if threshold >= OFF else threshold,
        "faithful_pass": _rate(sum(passes(r["faithful"], bar, threshold) for r in rows), len(rows)),
        "faithful_refused_by_rule": dict(
            sorted(
                _count(
                    r["faithful"]["reason"].split(" (")[0].split("«")[0].strip()
                    for r in rows
                    if not r["faithful"]["rules_ok"] and r["faithful"]["reason"]
                ).items(),
                key=lambda kv: -kv[1],
            )[:12]
        ),
        "content_words_supported": {
            "k": sum(supported),
            "n": sum(counts),
            "rate": round(rate, 4),
            "ci95_wilson_words": list(wilson(sum(supported), sum(counts))),
            "mean_per_sentence": bootstrap(ratio, groups=groups) if ratio else None,
        },
        "refused": {
            k: _rate(
                sum(not passes(r["checked"][k], bar, threshold) for r in rows if k in r["checked"]),
                sum(k in r["checked"] for r in rows),
            )
            for k in kinds
        },
    }
    times = sorted(r["ms"] for r in rows)
    out["ms_per_rendering"] = {
        "p50": round(times[len(times) // 2], 2),
        "p95": round(times[int(0.95 * len(times))], 2),
    }
    return out


def paired(rows: list[dict], off: tuple[float, float], on: tuple[float, float]) -> dict:
    """McNemar's exact test, witness off (bar, threshold) against on, on the same renderings: for
    faithful references "a_only"/"b_only" count passes, for each corruption kind refusals."""
    out = {
        "faithful_pass": mcnemar(
            [passes(r["faithful"], *off) for r in rows], [passes(r["faithful"], *on) for r in rows]
        )
    }
    for kind in sorted({k for r in rows for k in r["checked"]}):
        judged = [r["checked"][kind] for r in rows if kind in r["checked"]]
        out[f"{kind}_refused"] = mcnemar(
            [not passes(x, *off) for x in judged], [not passes(x, *on) for x in judged]
        )
    return out


def _count(items) -> dict:
    out: dict[str, int] = defaultdict(int)
    for i in items:
        out[i] += 1
    return out


def before(rows: list[dict]) -> dict:
    """The shipped check before issue 30 (similarity + names) on the same pairs (needs the embedder)."""
    from qa import translate as qtranslate
    from qa.config import Settings
    from qa.embeddings import load_embedder

    settings = Settings()
    embedder = load_embedder(settings.embedding_model, settings.models_dir, settings.threads)

    def ok(text: str, source: str) -> bool:
        check = qverify.check_rendering(text, source, embedder=embedder)
        return check.ok and not qtranslate.unsupported_names(text, source, embedder=embedder)

    kinds = sorted({k for r in rows for k in r["corruptions"]})
    print(f"the check before: {len(rows)} sentences", flush=True)
    faithful = [ok(r["en"], r["ar"]) for r in rows]
    refused = {
        k: [not ok(r["corruptions"][k], r["ar"]) for r in rows if k in r["corruptions"]] for k in kinds
    }
    return {
        "faithful_pass": _rate(sum(faithful), len(faithful)),
        "refused": {k: _rate(sum(v), len(v)) for k, v in refused.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", action="store_true", help="also score the check shipped before")
    parser.add_argument(
        "--out", type=Path, default=OUT, help="results file (default eval/calibration/wordcheck.json)"
    )
    parser.add_argument(
        "--before-limit",
        type=int,
        default=120,
        help="report-half sentences the check before scores (it is slow)",
    )
    parser.add_argument("--no-align", action="store_true", help="score without the alignment witness")
    parser.add_argument("--rows", type=Path, help="keep every check's result in this file (JSON)")
    parser.add_argument("--reuse", action="store_true", help="read the results from --rows, check nothing")
    args = parser.parse_args()
    if args.reuse and args.rows:
        rows = json.loads(args.rows.read_text(encoding="utf-8"))
    else:
        rows = load()
        t0 = time.perf_counter()
        score(rows, align=not args.no_align)
        print(f"checked {len(rows)} sentences and their corruptions in {time.perf_counter() - t0:.0f} s")
        if args.rows:
            args.rows.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    halves = {h: [r for r in rows if r["half"] == h] for h in ("calibrate", "report")}
    cal = halves["calibrate"]
    bar_off = choose_bar(cal)
    threshold, bar_on, align_curve = choose_threshold(cal)
    shipped = (
        (wordcheck.SENTENCE_SHARE_WITHOUT_ALIGNMENT, OFF)
        if args.no_align
        else (wordcheck.SENTENCE_SHARE, wordcheck.ALIGN_THRESHOLD)
    )
    without = (wordcheck.SENTENCE_SHARE_WITHOUT_ALIGNMENT, OFF)
    out = {
        "data": str(DATA.relative_to(ROOT.parent)),
        "split": "crc32(title) % 2: 0 calibrate, 1 report",
        "target_unrelated_refused": TARGET_UNRELATED,
        "bar_chosen_without_alignment": bar_off,
        "align_threshold_chosen": None if threshold >= OFF else threshold,
        "bar_chosen": bar_on,
        "bar_shipped": shipped[0],
        "bar_shipped_without_alignment": without[0],
        "align_threshold_shipped": None if shipped[1] >= OFF else shipped[1],
        "align_curve_calibrate": align_curve,
        "curve_calibrate": [
            {
                "bar": b,
                "faithful_pass": round(sum(passes(r["faithful"], b, shipped[1]) for r in cal) / len(cal), 4),
                "unrelated_refused": round(
                    sum(
                        not passes(r["checked"]["unrelated_word"], b, shipped[1])
                        for r in cal
                        if "unrelated_word" in r["checked"]
                    )
                    / max(1, sum("unrelated_word" in r["checked"] for r in cal)),
                    4,
                ),
            }
            for b in GRID
        ],
        "calibrate": report(cal, *shipped),
        "report_without_alignment": report(halves["report"], *without),
        "report": report(halves["report"], *shipped),
        "report_paired_without_vs_with": paired(halves["report"], without, shipped),
        "examples": [
            {"en": r["en"], "ar": r["ar"], **{k: v for k, v in r["corruptions"].items()}}
            for r in halves["report"][:5]
        ],
    }
    subset = halves["report"][:: max(1, len(halves["report"]) // args.before_limit)][: args.before_limit]
    out["after_same_subset"] = report(subset, *shipped)
    if args.before:
        out["before_report"] = before(subset)
    elif args.out.is_file():  # kept from the last run that scored it (it does not depend on the word check)
        kept = json.loads(args.out.read_text(encoding="utf-8"))
        if "before_report" in kept:
            out["before_report"] = kept["before_report"]
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    keys = ("bar_chosen_without_alignment", "align_threshold_chosen", "bar_chosen", "bar_shipped")
    print(json.dumps({k: out[k] for k in (*keys, "align_threshold_shipped")}, indent=1))
    print(json.dumps(align_curve, indent=1))
    for k in ("report_without_alignment", "report", "report_paired_without_vs_with"):
        print(k, json.dumps(out[k], indent=1))
    if "before_report" in out:
        print(json.dumps(out["before_report"], indent=1))


if __name__ == "__main__":
    main()
