"""Paragraph retrieval on the dev benchmark (all 18 articles in one collection): R@1, R@5, MRR by language.

A hit is a retrieved chunk inside the gold paragraph (by character offsets). Run:
`python -m bench.bench_retrieval [--limit N]`. Writes bench/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from bench.common import DEV, fresh_assistant, save


def recall_by_language(qa, questions: list[dict], articles: dict[str, dict], *, k: int = 5) -> dict:
    """R@1, R@5 and MRR of the gold paragraph for each question language, on an ingested `qa`."""
    # Gold offsets count a leading BOM as a character; our text (decoded as utf-8-sig) has none.
    shift = {
        a: int((DEV / info["file"]).read_text(encoding="utf-8").startswith("\ufeff"))
        for a, info in articles.items()
    }
    ranks: dict[str, list[int | None]] = defaultdict(list)
    for q in tqdm(questions, desc="questions"):
        gold = articles[q["article"]]["paragraph_offsets"][q["context_paragraph_index"]]
        retrieval = qa.retriever.retrieve(q["question"], k=k)
        rank = None
        for i, hit in enumerate(retrieval.hits, start=1):
            c = hit.chunk
            start, end = c.start + shift[q["article"]], c.end + shift[q["article"]]
            if c.doc_id == q["article"] + ".txt" and gold[0] <= start and end <= gold[1]:
                rank = i
                break
        ranks[q["question_lang"]].append(rank)

    table = {}
    for lang, rs in sorted(ranks.items()):
        n = len(rs)
        table[lang] = {
            "n": n,
            "R@1": round(sum(r == 1 for r in rs) / n, 3),
            "R@5": round(sum(r is not None and r <= 5 for r in rs) / n, 3),
            "MRR": round(sum(1 / r for r in rs if r) / n, 3),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, help="questions to ask (default: all)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--index", type=Path, help="reuse (or create) the index here: re-runs skip embedding")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="settings overrides")
    args = parser.parse_args()

    articles = {a["article"]: a for a in map(json.loads, (DEV / "articles.jsonl").open())}
    questions = [json.loads(line) for line in (DEV / "questions.jsonl").open()][: args.limit]
    overrides = dict(item.split("=", 1) for item in args.set)
    qa = fresh_assistant(args.index, **overrides)
    t0 = time.perf_counter()
    qa.ingest([DEV / "articles"])
    ingest_s = time.perf_counter() - t0

    table = recall_by_language(qa, questions, articles, k=args.k)
    s = qa.settings
    settings = {
        k: getattr(s, k)
        for k in (
            "embedding_model",
            "second_embedding_model",
            "second_embedding_weight",
            "chunk_tokens",
            "lexical_weight",
            "sentence_weight",
            "candidates",
        )
    }
    path = save("retrieval", {"ingest_s": round(ingest_s, 1), "settings": settings, "by_language": table})
    for lang, row in table.items():
        print(f"{lang}: n={row['n']}  R@1={row['R@1']:.3f}  R@5={row['R@5']:.3f}  MRR={row['MRR']:.3f}")
    print(f"ingest {ingest_s:.0f} s; written to {path}")


if __name__ == "__main__":
    main()
