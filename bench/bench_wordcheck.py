"""Speed and coverage of the word-by-word gloss and the word check (qa/gloss.py, qa/wordcheck.py).

`python -m bench.bench_wordcheck`: in a fresh process, the time to load the dictionaries and the
analyser; the time to gloss each sentence of the seed and the dev articles (cold: every word new to
the process's caches, as the first question about an article; warm: glossed before); the time to
check each reference translation of the report half of parallel-sentences.jsonl (cold and warm,
the alignment witness off: its cost is measured apart, `alignment_cost`), after the gloss
(every per-word cache emptied again, the Arabic sentence glossed first, as the page glosses a
cited sentence for an English reader, then the check timed) and prepared (the same with `qa.wordcheck.prepare`, every
witness's per-word work done first; the time before the check is recorded apart);
gloss coverage: the share of content words (and names) with a gloss or a Latin name, on the seed
and the dev articles, with the witness that gave it; peak memory (RSS). Writes
bench/results/wordcheck.json. `--alignment-only`: only the alignment witness's cost (qa.align):
its model's load time, and per check of a report-half reference the time with the witness off, on
with neither sentence seen by the encoder (cold), and on again (warm: both sentences' vectors
cached), after the dictionaries have seen the pair, so the difference is the witness alone.
Leaves out: refusals (bench/calibrate_wordcheck.py).
"""

from __future__ import annotations

import json
import resource
import time
from collections import Counter
from pathlib import Path

from bench.calibrate_wordcheck import load
from bench.common import percentiles, save
from eval.stats import wilson
from qa import gloss, wordcheck
from qa import text as qtext
from qa.config import SEED_DOCUMENT

DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "eval-data" / "arabic-qa-dev"


def _coverage(words: list) -> dict:
    content = [w for w in words if w.kind in ("content", "name")]
    k, n = sum(w.covered for w in content), len(content)
    low, high = wilson(k, n)
    return {
        "k": k,
        "n": n,
        "rate": round(k / n, 4) if n else None,
        "ci95": [low, high],
        "by_witness": dict(Counter(w.witness or "none" for w in content).most_common()),
        "named_only": sum(1 for w in content if w.latin and not w.glosses),
    }


def alignment_cost(rows: list[dict], limit: int = 100) -> dict:
    """The alignment witness's added time per check (ms, cold and warm) on `limit` references."""
    from qa import align
    from qa.config import get_settings

    settings = get_settings()
    t0 = time.perf_counter()
    aligner = align.aligner(settings.models_dir, threads=settings.threads)
    aligner.tokens("warm")
    out: dict = {"load_s": round(time.perf_counter() - t0, 2)}
    sample = rows[:: max(1, len(rows) // limit)][:limit]
    times: dict[str, list[float]] = {"off": [], "cold": [], "warm": []}
    for r in sample:
        wordcheck.check(r["en"], r["ar"], align=False)  # the dictionaries' caches warmed for this pair
        for state, on in (("off", False), ("cold", True), ("warm", True)):
            t = time.perf_counter()
            wordcheck.check(r["en"], r["ar"], align=on)
            times[state].append((time.perf_counter() - t) * 1000)
    for state, values in times.items():
        out[f"check_{state}_ms"] = percentiles(values)
    for state in ("cold", "warm"):
        added = [on - off for on, off in zip(times[state], times["off"])]
        out[f"added_{state}_ms"] = percentiles(added)
    out["sentences"] = len(sample)
    print(out, flush=True)
    return out


def main() -> None:
    import sys

    if "--alignment-only" in sys.argv:
        rows = [r for r in load() if r["half"] == "report"]
        gloss.dictionaries()
        wordcheck._stem_index()
        print(save("wordcheck_alignment", alignment_cost(rows)))
        return
    t0 = time.perf_counter()
    gloss.dictionaries()
    wordcheck._stem_index()
    gloss.morphology("المدرسة")
    gloss.romanize("ماريا")
    load_s = time.perf_counter() - t0
    texts = {"seed": [SEED_DOCUMENT.read_text(encoding="utf-8")]}
    articles = [
        json.loads(line) for line in (DEV / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    texts["dev"] = [(DEV / a["file"]).read_text(encoding="utf-8") for a in articles]
    out: dict = {"load_s": round(load_s, 2), "gloss": {}, "coverage": {}}
    for name, docs in texts.items():
        sentences = [d[s.start : s.end] for d in docs for s in qtext.sentences(d)]
        for state in ("cold", "warm"):
            times, words = [], []
            for sentence in sentences:
                t = time.perf_counter()
                words.extend(gloss.gloss(sentence))
                times.append((time.perf_counter() - t) * 1000)
            out["gloss"][f"{name}_{state}_ms"] = percentiles(times)
        out["coverage"][name] = _coverage(words)
        print(name, out["coverage"][name], out["gloss"][f"{name}_cold_ms"], flush=True)
    rows = [r for r in load() if r["half"] == "report"]
    for state in ("cold", "warm"):
        times = []
        for r in rows:
            t = time.perf_counter()
            wordcheck.check(r["en"], r["ar"], align=False)
            times.append((time.perf_counter() - t) * 1000)
        out[f"check_{state}_ms"] = percentiles(times)
        print(state, out[f"check_{state}_ms"], flush=True)
    for state, before in (("glossed", gloss.gloss), ("prepared", lambda text: wordcheck.prepare([text]))):
        wordcheck.clear_caches()
        times, before_times = [], []
        for r in rows:
            t = time.perf_counter()
            before(r["ar"])
            before_times.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            wordcheck.check(r["en"], r["ar"], align=False)
            times.append((time.perf_counter() - t) * 1000)
        out[f"{state}_ms"] = percentiles(before_times)
        out[f"check_{state}_ms"] = percentiles(times)
        print(state, out[f"check_{state}_ms"], "before it", out[f"{state}_ms"], flush=True)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["alignment"] = alignment_cost(rows)
    out["lemmatisers"] = compare_lemmatisers(texts)
    print(save("wordcheck", out))


def compare_lemmatisers(texts: dict[str, list[str]]) -> dict:
    """The share of content words a dictionary glosses (names in Latin letters not counted) on the
    seed and dev articles with each lemmatiser behind the dictionaries: farahidi (shipped), Snowball's
    Arabic stemmer, and none (our affix stripping alone, qa.glossary.word_forms)."""
    import snowballstemmer

    arabic = snowballstemmer.stemmer("arabic")
    shipped = gloss.morphology
    variants = {
        "farahidi": shipped,
        "snowball-arabic": lambda w: gloss.Morphology((gloss._bare(arabic.stemWord(w)),), (), False),
        "none": lambda w: gloss.Morphology((), (), False),
    }
    sentences = [d[s.start : s.end] for docs in texts.values() for d in docs for s in qtext.sentences(d)]
    out = {}
    try:
        for name, morphology in variants.items():
            gloss.morphology = morphology
            gloss._word.cache_clear()
            words = [w for s in sentences for w in gloss.gloss(s) if w.kind in ("content", "name")]
            k, n = sum(bool(w.glosses) for w in words), len(words)
            low, high = wilson(k, n)
            out[name] = {"k": k, "n": n, "rate": round(k / n, 4), "ci95": [low, high]}
            print(name, out[name], flush=True)
    finally:
        gloss.morphology = shipped
        gloss._word.cache_clear()
    return out


if __name__ == "__main__":
    main()
