"""Scale: write throughput, the first question after a write, warm retrieval and memory as one
collection grows to 100,000 chunks, on embedded Chroma or a `chroma run` server.

The collection is built from the dev benchmark's 18 real articles, chunked by the product's own
chunker and re-used under new ids (copy i of an article is a new document version with the same
text), with random unit vectors for chunks and sentences (in Chroma, and the float16 copy and the second
embedder's in the documents record, from which candidates are scored): the embedding model is measured apart
(`embed_query_p50_ms`, the real model on the seed questions). Questions are the dev benchmark's,
in both languages, their vectors computed once by the real model, so `retrieve_*` is retrieval
without the query embedding: Chroma's two nearest-neighbour queries, the lexical index (Arabic
questions), fetching candidates by id, fusion and evidence.
For each size: `write_chunks_per_s` (documents written through `Store.replace_documents`, 20 per call,
chunks and their sentences), `lexical_update_ms` (bringing the saved lexical index up to date, as `qa ingest`
does before it exits), `first_query_after_write_ms` (one more document written, then one question;
the median of 5 such rounds),
`first_query_new_process_ms` (a new process opens the index and answers one question),
`retrieve_p50_ms` / `retrieve_p95_ms` (warm, 2 rounds of the questions), `rss_mb` and
`peak_rss_mb` (this process, the embedding model included), and `server_rss_mb` for a server this
run started. Rows of other sizes already saved for the same store kind are kept.
With `--index DIR` the collection is kept: a re-run grows it further, or only measures it (to
measure on a quiet machine after a long build).
Run: `python -m bench.bench_scale --chunks 1000 10000 100000 [--chroma-url URL | --chroma-server]`.
Prints one JSON line per size, writes bench/results/scale.json (a section per store kind) and
plots bench/results/scale.png. Leaves out: answer wording (retrieval only) and ingest's embedding
time (bench_ingest).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import DEV, RESULTS, SEED_SET, percentiles, save
from qa import ingest as qingest
from qa.assistant import Assistant
from qa.config import Settings
from qa.store import DocVectors

QUESTIONS_PER_LANGUAGE = 20
AFTER_WRITE = 5  # rounds of "write one document, ask one question" (one round alone is noisy)
BULK_DOCUMENTS = 20  # documents per write while growing: ~110 chunks and ~500 sentences per call


class CachedQueries:
    """The embedder for retrieval, with the question vectors computed beforehand (no model time)."""

    def __init__(self, embedder, questions: list[str]) -> None:
        self.inner = embedder
        self.vectors = {q: embedder.encode_query(q) for q in questions}

    def encode_query(self, text: str) -> np.ndarray:
        return self.vectors[text]

    def __getattr__(self, name):
        return getattr(self.inner, name)


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB (/proc/<pid>/status VmRSS); this one by default."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def dev_questions() -> list[str]:
    rows = [json.loads(line) for line in (DEV / "questions.jsonl").open(encoding="utf-8")]
    out = []
    for lang in ("ar", "en"):
        out += [r["question"] for r in rows if r["question_lang"] == lang][:QUESTIONS_PER_LANGUAGE]
    return out


def articles(assistant: Assistant) -> list[tuple[qingest.Document, list[qingest.Chunk]]]:
    """The dev articles, chunked as ingest chunks them."""
    s, embedder = assistant.settings, assistant.embedder
    out = []
    for path in sorted((DEV / "articles").glob("*.txt")):
        doc = qingest.read_document(path)
        chunks = qingest.chunk_for_index(doc, embedder=embedder, settings=s)
        out.append((doc, chunks))
    return out


class Copier:
    """Writes copy after copy of the articles, with random unit vectors (and random second-embedder
    vectors of `second_dim` when the assistant has a second embedder)."""

    def __init__(self, assistant: Assistant, sources, dim: int, second_dim: int | None = None) -> None:
        self.store = assistant.store
        self.sources = sources
        self.dim = dim
        self.second = assistant.second_embedder
        self.second_dim = second_dim
        self.rng = np.random.default_rng(0)
        self.n = 0

    def _unit(self, n: int, dim: int | None = None) -> np.ndarray:
        v = self.rng.standard_normal((n, dim or self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def second_vectors(self, chunks: int, spans) -> DocVectors | None:
        if self.second is None:
            return None
        return DocVectors(
            self.second.name, chunks, tuple(spans), self._unit(chunks + len(spans), self.second_dim)
        )

    def fill_kept(self) -> int:
        """Random vectors in the documents record for copies written before it kept them (a kept
        index), for the main model and the second embedder; returns how many documents lacked
        some. A copy's spans are its source article's, so Chroma is not read. Random either way:
        only the cost of reading them is measured."""
        records = self.store.records
        main = set(records.missing_vectors(self.store.embedding_model))
        other = set(records.missing_vectors(self.second.name)) if self.second is not None else set()
        versions = records.versions()
        sources = {doc.id: chunks for doc, chunks in self.sources}
        for doc_id in sorted(main | other):
            chunks = sources[doc_id.split("-", 1)[1]]
            spans = sorted({sp for c in chunks for sp in c.sentences})
            if doc_id in main:
                rows = self._unit(len(chunks) + len(spans))
                kept = DocVectors(self.store.embedding_model, len(chunks), tuple(spans), rows)
                self.store.put_doc_vectors(doc_id, versions[doc_id], kept)
            if doc_id in other:
                self.store.put_doc_vectors(doc_id, versions[doc_id], self.second_vectors(len(chunks), spans))
        return len(main | other)

    def _next(self):
        doc, chunks = self.sources[self.n % len(self.sources)]
        copy_id = f"copy{self.n:06d}-{doc.id}"
        sha = hashlib.sha256(f"{copy_id}\x00{doc.sha256}".encode()).hexdigest()
        self.n += 1
        copy = dataclasses.replace(doc, id=copy_id, sha256=sha)
        copies = [
            dataclasses.replace(c, id=f"{sha[:16]}:{c.index}", doc_id=copy_id, doc_sha=sha) for c in chunks
        ]
        spans = sorted({sp for c in chunks for sp in c.sentences})
        return copy, copies, self._unit(len(copies)), dict(zip(spans, self._unit(len(spans))))

    def write(self, documents: int = 1) -> int:
        """Write the next `documents` copies in one `replace_documents`; returns their chunk count."""
        writes = [self._next() for _ in range(documents)]
        second = {w[0].id: self.second_vectors(len(w[1]), sorted(w[3])) for w in writes}
        self.store.replace_documents(writes, second=None if self.second is None else second)
        return sum(len(w[1]) for w in writes)


def timed_ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def retrieve_ms(retriever, question: str) -> float:
    """Wall time of one retrieval, catching up with writes included; the cached query vector costs
    microseconds, so this is retrieval without the query embedding."""
    return timed_ms(lambda: retriever.retrieve(question))


def open_in_new_process(settings: Settings, question: str, dim: int) -> float:
    """ms for a new process to open the index and retrieve once (lexical index loaded, not rebuilt)."""
    probe = {"chroma_path": str(settings.chroma_path), "chroma_url": settings.chroma_url}
    probe |= {"collection": settings.collection, "question": question, "dim": dim}
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_scale", "--probe", json.dumps(probe)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["ms"]


def new_process_probe(probe: dict) -> dict:
    """Run in the new process: open the index, then retrieve once with a random query vector."""
    from qa.retrieve import Retriever

    t0 = time.perf_counter()
    settings = Settings(
        _env_file=None,
        chroma_path=Path(probe["chroma_path"]),
        chroma_url=probe["chroma_url"],
        collection=probe["collection"],
    )
    v = np.random.default_rng(1).standard_normal(probe["dim"]).astype(np.float32)
    vector = v / np.linalg.norm(v)

    class RandomQuery:
        def encode_query(self, text: str) -> np.ndarray:
            return vector

    Retriever(Assistant(settings).store, RandomQuery(), settings).retrieve(probe["question"])
    return {"ms": (time.perf_counter() - t0) * 1000}


def start_chroma_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """A real `chroma run` on a free loopback port, its data in `folder`."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("chroma run did not start within 60 s")


def merged_rows(kind: str, rows: list[dict]) -> list[dict]:
    """This run's rows plus the saved rows of other sizes (a 100k run on a kept index adds to 1k/10k)."""
    path = RESULTS / "scale.json"
    saved = json.loads(path.read_text()).get(kind, {}).get("rows", []) if path.exists() else []

    def near(a: int, b: int) -> bool:
        return abs(a - b) <= 0.05 * max(a, b)

    kept = [r for r in saved if not any(near(r["chunks"], n["chunks"]) for n in rows)]
    return sorted(kept + rows, key=lambda r: r["chunks"])


def plot(rows: list[dict], path: Path, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chunks = [r["chunks"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for key, name in (
        ("retrieve_p50_ms", "warm retrieval p50"),
        ("retrieve_p95_ms", "warm retrieval p95"),
        ("first_query_after_write_ms", "first question after a write"),
    ):
        ax.plot(chunks, [r[key] for r in rows], marker="o", label=name)
    ax.axhline(150, color="grey", linestyle="--", linewidth=1, label="target p50 150 ms")
    ax.set_xscale("log")
    ax.set_xlabel("chunks in the collection")
    ax.set_ylabel("ms (no query embedding)")
    ax.set_title(f"Retrieval as the collection grows ({label}, 2 cores)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--chroma-url", help="a running `chroma run` server")
    parser.add_argument("--chroma-server", action="store_true", help="start a `chroma run` for the run")
    parser.add_argument(
        "--index", type=Path, help="keep the collection here; a re-run grows it or only measures it"
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # the new-process measurement
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(new_process_probe(json.loads(args.probe))))
        return

    work = args.index or Path(tempfile.mkdtemp(prefix="qa-scale-"))
    server = None
    url = args.chroma_url
    if args.chroma_server:
        server, url = start_chroma_server(work / "server")
    kind = "server" if url else "embedded"
    settings = Settings(
        _env_file=None,
        chroma_path=work / "chroma",
        chroma_url=url,
        collection="scale" if args.index else f"scale{os.getpid()}",
    )
    try:
        assistant = Assistant(settings)
        questions = dev_questions()
        seed_questions = [json.loads(line)["question"] for line in SEED_SET.open(encoding="utf-8")]
        embedder = assistant.embedder
        embedder.encode_query("warm up")
        embed_ms = [timed_ms(lambda q=q: embedder.encode_query(q)) for q in seed_questions]
        retriever = assistant.retriever
        retriever.embedder = CachedQueries(embedder, questions)
        second_dim = None
        if retriever.second is not None:  # its stored vectors are read and scored too
            retriever.second = CachedQueries(retriever.second, questions)
            second_dim = len(retriever.second.encode_query(questions[0]))
        dim = len(embedder.encode_query("x"))
        copier = Copier(assistant, articles(assistant), dim, second_dim)
        filled = copier.fill_kept()
        if filled:
            print(
                f"random vectors kept in the documents record for {filled} documents",
                flush=True,
            )

        copier.n = len(assistant.store.documents())  # a kept collection goes on where it stopped
        rows, written = [], assistant.store.count()
        for target in sorted(args.chunks):
            t0, before = time.perf_counter(), written
            while written < target:
                written += copier.write(BULK_DOCUMENTS)
            grown, grow_s = written - before, time.perf_counter() - t0
            lexical_ms = timed_ms(lambda: retriever.lexical(background=False))
            # one more document, then the first question after it: the median of AFTER_WRITE rounds
            firsts = []
            for i in range(AFTER_WRITE):
                written += copier.write(1)
                firsts.append(retrieve_ms(retriever, questions[i * 7 % len(questions)]))
            first = percentiles(firsts)["p50"]
            warm = [retrieve_ms(retriever, q) for _ in range(2) for q in questions]
            row = {
                "store": kind,
                "chunks": written,
                "write_chunks_per_s": round(grown / grow_s, 1) if grown else None,
                "lexical_update_ms": round(lexical_ms, 1),
                "first_query_after_write_ms": round(first, 1),
                "first_query_after_write_max_ms": round(max(firsts), 1),
                "first_query_new_process_ms": round(open_in_new_process(settings, questions[0], dim), 1),
                "retrieve_p50_ms": percentiles(warm)["p50"],
                "retrieve_p95_ms": percentiles(warm)["p95"],
                "embed_query_p50_ms": percentiles(embed_ms)["p50"],
                "rss_mb": round(rss_mb(), 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
            if server is not None:  # the vectors live there: its memory is the other half of the cost
                row["server_rss_mb"] = round(rss_mb(server.pid), 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
        rows = merged_rows(kind, rows)
        plot(rows, RESULTS / f"scale-{kind}.png", kind)
        save("scale", {"rows": rows, "questions": len(questions)}, section=kind)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.index:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
