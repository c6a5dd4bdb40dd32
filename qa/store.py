"""Store: chunks and their sentences, with vectors, in Chroma (embedded or a `chroma run` server).

Two collections per index: `<name>` holds chunks (the retrieval unit), `<name>__sentences` holds each
distinct sentence once (the citation unit, scored against the question). A collection records the
embedding model that filled it; opening it with another model is a `StoreError` that says how to
re-index. Writes of one document are all-or-nothing: vectors are computed before anything is
touched, and a failed write puts the old records back. Chroma's own embedding function is never
used (it would download a model): vectors always come from `qa.embeddings`.
Leaves out: ranking (retrieve.py) and the lexical index, which is rebuilt from here.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np

from qa.errors import StoreError
from qa.ingest import Chunk, Document

SENTENCES_SUFFIX = "__sentences"


@dataclass(frozen=True)
class DocInfo:
    """One indexed document, as `qa docs` lists it."""

    id: str
    sha256: str
    chunks: int
    chars: int


def connect(*, chroma_path, chroma_url: str | None):
    """A Chroma client: a server at `chroma_url` if set, else an embedded one at `chroma_path`."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=True)
    if chroma_url:
        url = urlparse(chroma_url)
        try:
            client = chromadb.HttpClient(
                host=url.hostname or "localhost",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
            client.heartbeat()
        except Exception as exc:  # connection refused, DNS, TLS: all one sentence for the user
            raise StoreError(
                f"Cannot reach the Chroma server at {chroma_url} ({type(exc).__name__}); "
                "start it with `chroma run` or unset QA_CHROMA_URL."
            ) from None
        return client
    chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(chroma_path), settings=settings)


class Store:
    """The chunk and sentence collections of one index, bound to one embedding model's name."""

    def __init__(self, client, *, name: str, embedding_model: str) -> None:
        self.client = client
        self.name = name
        self.embedding_model = embedding_model
        self._open()
        self.version = 0  # bumped by every write in this process; readers rebuild caches on change

    def _open(self) -> None:
        client, name, embedding_model = self.client, self.name, self.embedding_model
        metadata = {"embedding_model": embedding_model, "hnsw:space": "cosine"}
        try:
            self.chunks = client.get_or_create_collection(name, metadata=metadata, embedding_function=None)
            self.sentences = client.get_or_create_collection(
                name + SENTENCES_SUFFIX, metadata=metadata, embedding_function=None
            )
        except Exception as exc:
            raise StoreError(f"Cannot open the Chroma collection {name!r}: {exc}") from None
        found = (self.chunks.metadata or {}).get("embedding_model")
        if found and found != embedding_model:
            raise StoreError(
                f"The index {name!r} was built with the embedding model {found!r}, not "
                f"{embedding_model!r}; set QA_EMBEDDING_MODEL={found} or re-index with "
                "`python -m qa reset` and `python -m qa ingest`."
            )

    # -- reads ---------------------------------------------------------------------------------

    def count(self) -> int:
        return self.chunks.count()

    def document_sha(self, doc_id: str) -> str | None:
        """The text hash a document was indexed with, or None when it is not indexed."""
        got = self.chunks.get(where={"doc_id": doc_id}, limit=1, include=["metadatas"])
        return got["metadatas"][0]["doc_sha"] if got["ids"] else None

    def documents(self) -> list[DocInfo]:
        """Every indexed document with its chunk count and length."""
        metas = self.chunks.get(include=["metadatas"])["metadatas"]
        docs: dict[str, DocInfo] = {}
        for m in metas:
            old = docs.get(m["doc_id"])
            docs[m["doc_id"]] = DocInfo(
                id=m["doc_id"],
                sha256=m["doc_sha"],
                chunks=(old.chunks if old else 0) + 1,
                chars=m["doc_chars"],
            )
        return sorted(docs.values(), key=lambda d: d.id)

    def all_chunks(self) -> list[Chunk]:
        """Every chunk (text and offsets, no vectors): the lexical index is built from these."""
        got = self.chunks.get(include=["documents", "metadatas"])
        return [_chunk(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]

    def query_chunks(self, vector: np.ndarray, n: int) -> dict[str, float]:
        """The `n` chunks nearest to a query vector: chunk id -> cosine similarity."""
        return self._query(self.chunks, vector, n)

    def query_sentences(self, vector: np.ndarray, n: int) -> dict[str, float]:
        """The `n` sentences nearest to a query vector: sentence id -> cosine similarity."""
        return self._query(self.sentences, vector, n)

    def _query(self, collection, vector: np.ndarray, n: int) -> dict[str, float]:
        n = min(n, collection.count())
        if n == 0:
            return {}
        got = collection.query(query_embeddings=[vector.tolist()], n_results=n, include=["distances"])
        return {i: 1.0 - d for i, d in zip(got["ids"][0], got["distances"][0])}

    def chunk_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        return self._vectors(self.chunks, ids)

    def sentence_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        return self._vectors(self.sentences, ids)

    def _vectors(self, collection, ids: list[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = collection.get(ids=ids, include=["embeddings"])
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"])}

    # -- writes --------------------------------------------------------------------------------

    def replace_document(
        self,
        doc: Document,
        chunks: list[Chunk],
        chunk_vectors: np.ndarray,
        sentence_vectors: dict[tuple[int, int], np.ndarray],
    ) -> None:
        """Make the index hold exactly these chunks for `doc`, all or nothing."""
        old_chunks = self._records(self.chunks, doc.id)
        old_sentences = self._records(self.sentences, doc.id)
        new_chunks = {
            "ids": [c.id for c in chunks],
            "embeddings": chunk_vectors,
            "documents": [c.text for c in chunks],
            "metadatas": [_chunk_metadata(doc, c) for c in chunks],
        }
        spans = sorted(sentence_vectors)
        new_sentences = {
            "ids": [sentence_id(doc.id, s, e) for s, e in spans],
            "embeddings": np.stack([sentence_vectors[s] for s in spans]) if spans else [],
            "metadatas": [{"doc_id": doc.id, "start": s, "end": e} for s, e in spans],
        }
        try:
            self._delete(doc.id)
            if chunks:
                self.sentences.add(**new_sentences)
                self.chunks.add(**new_chunks)
        except Exception as exc:
            try:  # put the document back as it was
                self._delete(doc.id)
                for collection, records in ((self.sentences, old_sentences), (self.chunks, old_chunks)):
                    if records["ids"]:
                        collection.add(**records)
            finally:
                self.version += 1
            raise StoreError(f"Could not write {doc.id} to the index ({exc}); it is unchanged.") from None
        self.version += 1

    def remove_document(self, doc_id: str) -> bool:
        """Delete a document's chunks and sentences; False when it was not indexed."""
        if self.document_sha(doc_id) is None:
            return False
        self._delete(doc_id)
        self.version += 1
        return True

    def reset(self) -> None:
        """Drop both collections and start empty (same embedding model)."""
        for name in (self.name, self.name + SENTENCES_SUFFIX):
            with contextlib.suppress(Exception):  # already gone
                self.client.delete_collection(name)
        self._open()
        self.version += 1

    def _delete(self, doc_id: str) -> None:
        self.chunks.delete(where={"doc_id": doc_id})
        self.sentences.delete(where={"doc_id": doc_id})

    @staticmethod
    def _records(collection, doc_id: str) -> dict:
        got = collection.get(where={"doc_id": doc_id}, include=["embeddings", "documents", "metadatas"])
        records = {"ids": got["ids"], "embeddings": got["embeddings"], "metadatas": got["metadatas"]}
        if got["documents"] is not None and any(d is not None for d in got["documents"]):
            records["documents"] = got["documents"]
        return records


def sentence_id(doc_id: str, start: int, end: int) -> str:
    """The id of a sentence record: one per distinct span of a document.

    Example: sentence_id("a.txt", 0, 9) == "a.txt:0:9"
    """
    return f"{doc_id}:{start}:{end}"


def _chunk_metadata(doc: Document, chunk: Chunk) -> dict:
    return {
        "doc_id": doc.id,
        "doc_sha": doc.sha256,
        "doc_chars": len(doc.text),
        "index": chunk.index,
        "paragraph": chunk.paragraph,
        "start": chunk.start,
        "end": chunk.end,
        "sentences": json.dumps(chunk.sentences),
    }


def _chunk(chunk_id: str, text: str, meta: dict) -> Chunk:
    return Chunk(
        id=chunk_id,
        doc_id=meta["doc_id"],
        index=meta["index"],
        paragraph=meta["paragraph"],
        start=meta["start"],
        end=meta["end"],
        text=text,
        sentences=tuple(tuple(s) for s in json.loads(meta["sentences"])),
    )
