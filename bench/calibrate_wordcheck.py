"""Calibrate and report the word-level verifier (qa/wordcheck.py) on professional translations.

`python -m bench.calibrate_wordcheck [--before]`: the 685 Arabic sentences of
../shared/eval-data/arabic-qa-calib/parallel-sentences.jsonl with their English originals (XQuAD,
CC BY-SA 4.0), split by article (crc32 of the title, even: calibration half, odd: report half;
never tuned on the report half). For each sentence: the faithful reference, and synthetic
corruptions of it (`corrupt`): a name swapped for another name of the same article, a number
changed, a negation added or removed, a name replaced by a plausible entity from outside the
article ("Kremlin" → "Kurds"), a relation word inverted ("with" → "against", "before" → "after"),
one content word replaced by an unrelated one. On the calibration half the sentence bar
(`qa.wordcheck.SENTENCE_SHARE`) is chosen: the lowest share of supported words at which at least
`TARGET_UNRELATED` of unrelated-word corruptions are refused (`choose_bar`); the report half is then scored at it:
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

from eval.stats import bootstrap, wilson
from qa import verify as qverify
from qa import wordcheck

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "eval-data" / "arabic-qa-calib" / "parallel-sentences.jsonl"
OUT = ROOT / "eval" / "calibration" / "wordcheck.json"
TARGET_UNRELATED = 0.85  # the target for a content word replaced by an unrelated one
GRID = [round(x * 0.05, 2) for x in range(0, 21)]
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


def score(rows: list[dict]) -> None:
    """Each row's faithful and corrupted renderings checked (share and pass at every bar)."""
    for i, r in enumerate(rows):
        if i % 100 == 0:
            print(f"{i}/{len(rows)} sentences checked", flush=True)
        t0 = time.perf_counter()
        c = wordcheck.check(r["en"], r["ar"], min_share=0.0)
        r["ms"] = (time.perf_counter() - t0) * 1000
        content = [w for w in c.words if w.kind in ("content", "name", "number")]
        r["faithful"] = {"rules_ok": c.ok, "share": c.share, "reason": c.reason}
        r["words"] = (sum(w.supported for w in content), len(content))
        r["checked"] = {}
        for kind, text in r["corruptions"].items():
            cc = wordcheck.check(text, r["ar"], min_share=0.0)
            r["checked"][kind] = {"rules_ok": cc.ok, "share": cc.share, "reason": cc.reason}


def passes(result: dict, bar: float) -> bool:
    return result["rules_ok"] and result["share"] is not None and result["share"] >= bar


def choose_bar(rows: list[dict]) -> float:
    """The lowest bar at which the calibration half's unrelated-word corruptions are refused at
    least `TARGET_UNRELATED` of the time (the refusal the share bar exists for: names, numbers,
    negations and relations have rules of their own); the highest bar of the grid if none is."""
    judged = [r for r in rows if "unrelated_word" in r["checked"]]
    for bar in GRID:
        if sum(not passes(r["checked"]["unrelated_word"], bar) for r in judged) >= TARGET_UNRELATED * len(
            judged
        ):
            return bar
    return GRID[-1]


def report(rows: list[dict], bar: float) -> dict:
    kinds = sorted({k for r in rows for k in r["corruptions"]})
    supported = [r["words"][0] for r in rows]
    counts = [r["words"][1] for r in rows]
    share = sum(supported) / max(1, sum(counts))
    ratio = [s / n for s, n in zip(supported, counts) if n]
    groups = [r["title"] for r in rows if r["words"][1]]
    out = {
        "sentences": len(rows),
        "articles": len({r["title"] for r in rows}),
        "faithful_pass": _rate(sum(passes(r["faithful"], bar) for r in rows), len(rows)),
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
            "rate": round(share, 4),
            "mean_per_sentence": bootstrap(ratio, groups=groups) if ratio else None,
        },
        "refused": {
            k: _rate(
                sum(not passes(r["checked"][k], bar) for r in rows if k in r["checked"]),
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
    args = parser.parse_args()
    rows = load()
    t0 = time.perf_counter()
    score(rows)
    print(f"checked {len(rows)} sentences and their corruptions in {time.perf_counter() - t0:.0f} s")
    halves = {h: [r for r in rows if r["half"] == h] for h in ("calibrate", "report")}
    bar = choose_bar(halves["calibrate"])
    out = {
        "data": str(DATA.relative_to(ROOT.parent)),
        "split": "crc32(title) % 2: 0 calibrate, 1 report",
        "target_unrelated_refused": TARGET_UNRELATED,
        "bar_chosen": bar,
        "bar_shipped": wordcheck.SENTENCE_SHARE,
        "curve_calibrate": [
            {
                "bar": b,
                "faithful_pass": round(
                    sum(passes(r["faithful"], b) for r in halves["calibrate"]) / len(halves["calibrate"]), 4
                ),
                "unrelated_refused": round(
                    sum(
                        not passes(r["checked"]["unrelated_word"], b)
                        for r in halves["calibrate"]
                        if "unrelated_word" in r["checked"]
                    )
                    / max(1, sum("unrelated_word" in r["checked"] for r in halves["calibrate"])),
                    4,
                ),
            }
            for b in GRID
        ],
        "calibrate": report(halves["calibrate"], wordcheck.SENTENCE_SHARE),
        "report": report(halves["report"], wordcheck.SENTENCE_SHARE),
        "examples": [
            {"en": r["en"], "ar": r["ar"], **{k: v for k, v in r["corruptions"].items()}}
            for r in halves["report"][:5]
        ],
    }
    subset = halves["report"][:: max(1, len(halves["report"]) // args.before_limit)][: args.before_limit]
    out["after_same_subset"] = report(subset, wordcheck.SENTENCE_SHARE)
    if args.before:
        out["before_report"] = before(subset)
    elif args.out.is_file():  # kept from the last run that scored it (it does not depend on the word check)
        kept = json.loads(args.out.read_text(encoding="utf-8"))
        if "before_report" in kept:
            out["before_report"] = kept["before_report"]
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps({k: out[k] for k in ("bar_chosen", "bar_shipped")}, indent=1))
    print(json.dumps(out["report"], indent=1))
    if "before_report" in out:
        print(json.dumps(out["before_report"], indent=1))


if __name__ == "__main__":
    main()
