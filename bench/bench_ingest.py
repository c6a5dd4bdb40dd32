"""Ingest overhead: the whole ingest vs the embedding model alone encoding the same texts.

Target: ingest <= 1.15 x encode time. Both sides encode the same texts (chunks and their distinct
sentences, which the pipeline embeds for sentence-level scoring and citations); the chunk-only
encode time is reported too. Run: `python -m bench.bench_ingest [--dev]`. Writes the `seed` (or `dev`) section of bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import time

from bench.common import DEV, fresh_assistant, save
from qa import ingest as qingest
from qa.config import SEED_DOCUMENT


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--dev", action="store_true", help="the 18 dev-benchmark articles instead of the seed"
    )
    args = parser.parse_args()
    paths = sorted((DEV / "articles").glob("*.txt")) if args.dev else [SEED_DOCUMENT]

    qa = fresh_assistant()
    embedder = qa.embedder
    embedder.encode_documents(["warm up"])
    s = qa.settings
    docs = [qingest.read_document(p) for p in paths]
    chunk_texts, all_texts = [], []
    for doc in docs:
        chunks = qingest.chunk_for_index(doc, embedder=embedder, settings=s)
        spans = sorted({sp for c in chunks for sp in c.sentences})
        chunk_texts += [c.text for c in chunks]
        all_texts += [c.text for c in chunks] + [doc.text[a:b] for a, b in spans]

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    encode_all = timed(lambda: embedder.encode_documents(all_texts))
    encode_chunks = timed(lambda: embedder.encode_documents(chunk_texts))
    ingest = timed(lambda: qa.ingest(paths, progress=False))
    result = {
        "documents": len(docs),
        "chunks": len(chunk_texts),
        "texts_embedded": len(all_texts),
        "encode_same_texts_s": round(encode_all, 2),
        "encode_chunks_only_s": round(encode_chunks, 2),
        "ingest_s": round(ingest, 2),
        "ratio": round(ingest / encode_all, 3),
    }
    path = save("ingest", result, section="dev" if args.dev else "seed")
    print(result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
