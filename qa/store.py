"""Store: chunks and their sentences, with vectors, in Chroma (embedded or a `chroma run` server).

Two collections per index: `<name>` holds chunks (the retrieval unit), `<name>__sentences` holds each
distinct sentence once (the citation unit, scored against the question). A collection records the
embedding model that filled it; opening it with another model is a `StoreError` that says how to
re-index. Chroma's own embedding function is never used (it would download a model): vectors always
come from `qa.embeddings`.

Writes never leave a moment without the document. Record ids carry the document's version (its
sha256), so a new version's records never overwrite the old one's: the new records are upserted
first (in batches below the client's maximum), then the documents record (qa/records.py) is
switched to the new version in one SQLite transaction (the commit point), then the old version's
records are deleted. Readers see only records of the version the documents record names, so a
write killed at any point leaves the old or the new version, never neither and never both; leftover
records are swept by the next write. The documents record's revision tells readers in other
processes that the index changed: an embedded Chroma client is then reopened (its in-memory vector
index does not see another process's writes), and an id that vanished between two reads is skipped.
Reads never scan the collection: documents and counts come from the documents record, chunks are
fetched by id (or by document), and each write stores its chunks' BM25 tokens in the record for the
lexical index (qa/lexical.py), which is saved under `<chroma path>/lexical/<collection>/`.
A write names its version in the record's `pending` table first, so `sweep()` after a killed write
deletes only that version's records. Each write also keeps a float16 copy of the document's vectors
in the documents record (`DocVectors`, per model, in the same commit): a question's candidates are
scored from that copy, so with a Chroma server only ids and texts cross the network (the ~600
sentence vectors a question scores cost 72 ms as JSON at 100,000 chunks, 12 ms from the copy), and a
second embedder's vectors live only there (they are never searched, only rescored).
Leaves out: ranking (retrieve.py) and the lexical index itself (lexical.py).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from urllib.parse import urlparse

import numpy as np

from qa import lexical as qlexical
from qa.errors import StoreError
from qa.ingest import Chunk, Document
from qa.records import DocInfo, DocVectors, Records

SENTENCES_SUFFIX = "__sentences"
SCHEMA = 2  # 2: ids carry the document version, a documents record beside the collections

__all__ = ["DocInfo", "DocVectors", "Store", "connect", "damaged_message", "sentence_id"]


def damaged_message(path, exc: BaseException) -> str:
    """The one sentence for an index that cannot be opened."""
    return (
        f"The index at {path} is damaged or unreadable ({type(exc).__name__}: {exc}); run "
        "`python -m qa reset` to move it aside and start empty."
    )


def connect(*, chroma_path, chroma_url: str | None):
    """A Chroma client: a server at `chroma_url` if set, else an embedded one at `chroma_path`.

    Raises `StoreError` for an unreachable server or a damaged embedded index.
    """
    # deferred: chromadb loads with the first use of the index, not with `qa --help`
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
    try:
        chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(chroma_path), settings=settings)
    except Exception as exc:  # "file is not a database", a truncated segment, …
        release_path(str(chroma_path))  # else the half-started system is reused for this path
        raise StoreError(damaged_message(chroma_path, exc)) from None


def _release(client) -> None:
    """Stop an embedded client's shared system so the next client for its path reads the disk afresh."""
    release_path(getattr(client, "_identifier", None))


def release_path(identifier: str | None) -> None:
    # deferred: chromadb loads with the first use of the index
    from chromadb.api.shared_system_client import SharedSystemClient

    system = SharedSystemClient._identifier_to_system.pop(identifier, None)
    SharedSystemClient._identifier_to_refcount.pop(identifier, None)
    if system is not None:
        with contextlib.suppress(Exception):
            system.stop()


class Store:
    """The chunk and sentence collections of one index, bound to one embedding model's name.

    `records` is the documents record (an in-memory one if not given); `reconnect`, when given,
    makes a fresh client for the same index (embedded Chroma: to see other processes' writes).
    """

    def __init__(
        self,
        client,
        *,
        name: str,
        embedding_model: str,
        records: Records | None = None,
        reconnect: Callable[[], object] | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.embedding_model = embedding_model
        self.records = records or Records(None, name)
        self._reconnect = reconnect
        self._reconnecting = threading.Lock()
        self._open()
        self.version = 0  # bumped by every write in this process
        self._seen = self.records.revision()

    def _open(self) -> None:
        client, name, embedding_model = self.client, self.name, self.embedding_model
        metadata = {"embedding_model": embedding_model, "hnsw:space": "cosine", "qa_schema": SCHEMA}
        try:
            self.chunks = client.get_or_create_collection(name, metadata=metadata, embedding_function=None)
            self.sentences = client.get_or_create_collection(
                name + SENTENCES_SUFFIX, metadata=metadata, embedding_function=None
            )
            legacy = (self.chunks.metadata or {}).get("qa_schema") != SCHEMA and self.chunks.count() > 0
        except Exception as exc:
            raise StoreError(f"Cannot open the Chroma collection {name!r}: {exc}") from None
        found = (self.chunks.metadata or {}).get("embedding_model")
        if found and found != embedding_model:
            raise StoreError(
                f"The index {name!r} was built with the embedding model {found!r}, not "
                f"{embedding_model!r}; set QA_EMBEDDING_MODEL={found} or re-index with "
                "`python -m qa reset` and `python -m qa ingest`."
            )
        if legacy:
            raise StoreError(
                f"The index {name!r} was built by an earlier version of qa; run `python -m qa reset` "
                "(it moves the old index aside) and ingest the documents again."
            )

    # -- freshness -----------------------------------------------------------------------------

    def revision(self) -> int:
        """The documents record's revision; when another process wrote since, reopen Chroma first."""
        revision = self.records.revision()
        if revision != self._seen:
            with self._reconnecting:  # one thread reopens; the others find it done
                if revision != self._seen and self._reconnect is not None:
                    _release(self.client)
                    self.client = self._reconnect()
                    self._open()
                self._seen = revision
        return revision

    # -- reads ---------------------------------------------------------------------------------

    def count(self) -> int:
        """Chunks of the visible document versions."""
        return sum(d.chunks for d in self.records.all())

    def document(self, doc_id: str) -> DocInfo | None:
        """The record of one indexed document, or None."""
        return self.records.get(doc_id)

    def document_sha(self, doc_id: str) -> str | None:
        """The text hash a document was indexed with, or None when it is not indexed."""
        info = self.records.get(doc_id)
        return info.sha256 if info else None

    def documents(self) -> list[DocInfo]:
        """Every indexed document, from the documents record (no chunk is read)."""
        return self.records.all()

    def all_chunks(self) -> list[Chunk]:
        """Every visible chunk (text and offsets, no vectors): reads the whole collection (tests, export).

        Records of a version the documents record does not name (a write in progress, or one that
        was killed) are left out.
        """
        visible = {d.id: d.sha256 for d in self.records.all()}
        got = self.chunks.get(include=["documents", "metadatas"])
        return [
            _chunk(i, d, m)
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])
            if visible.get(m["doc_id"]) == m["doc_sha"]
        ]

    def get_chunks(self, ids: list[str]) -> list[Chunk]:
        """The visible chunks among `ids`, in that order, fetched by id (text and offsets, no vectors).

        An id that vanished meanwhile (another process's write) is skipped.
        """
        if not ids:
            return []
        try:
            got = self.chunks.get(ids=ids, include=["documents", "metadatas"])
        except Exception:
            return []
        shas: dict[str, str | None] = {}
        found = {}
        for i, d, m in zip(got["ids"], got["documents"], got["metadatas"]):
            doc_id = m["doc_id"]
            if doc_id not in shas:
                shas[doc_id] = self.document_sha(doc_id)
            if shas[doc_id] == m["doc_sha"]:
                found[i] = _chunk(i, d, m)
        return [found[i] for i in ids if i in found]

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        """The visible chunks of one document, in document order (reads that document only)."""
        sha = self.document_sha(doc_id)
        if sha is None:
            return []
        got = self.chunks.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        chunks = [
            _chunk(i, d, m)
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])
            if m["doc_sha"] == sha
        ]
        return sorted(chunks, key=lambda c: c.index)

    def lexical_folder(self):
        """Where the lexical index of this collection is saved (None for an in-memory record)."""
        path = self.records.path
        return None if path == ":memory:" else path.parent / "lexical" / self.name

    def lexical_rows_from_chroma(self, doc_ids: list[str]) -> list[qlexical.DocChunks]:
        """Lexical rows for visible documents indexed before the record kept them; stores them too."""
        out = []
        for doc_id in doc_ids:
            chunks = self.document_chunks(doc_id)
            if not chunks:
                continue
            payload = qlexical.encode_chunks(chunks)
            self.records.put_lexical(doc_id, chunks[0].doc_sha, payload)
            out.append(qlexical.decode_chunks(doc_id, chunks[0].doc_sha, payload))
        return out

    def doc_vectors(self, versions: dict[str, str], model: str | None = None) -> dict[str, DocVectors]:
        """The kept vectors of these document versions (doc id -> sha256) under `model` (the
        index's embedding model by default); a version kept without them is absent."""
        model = model or self.embedding_model
        found = self.records.vectors(sorted(versions), model)
        return {
            doc_id: DocVectors.from_row(model, chunks, spans, dim, data)
            for doc_id, (sha, chunks, spans, dim, data) in found.items()
            if versions[doc_id] == sha
        }

    def put_doc_vectors(self, doc_id: str, sha256: str, vectors: DocVectors) -> None:
        """Keep vectors for an indexed version (a backfill; readers see no change)."""
        self.records.put_vectors(doc_id, sha256, vectors.row())

    def vectors_from_chroma(self, chunks: list[Chunk]) -> DocVectors | None:
        """The index model's vectors of one document's chunks (`document_chunks`) and their
        sentences, read back from Chroma (for an index written before the documents record kept
        them); None when some are gone (the document was replaced meanwhile)."""
        doc_id, sha = chunks[0].doc_id, chunks[0].doc_sha
        spans = sorted({s for c in chunks for s in c.sentences})
        ids = [sentence_id(doc_id, a, b, sha) for a, b in spans]
        chunk_vecs = self.chunk_vectors([c.id for c in chunks])
        sent_vecs = self.sentence_vectors(ids)
        if len(chunk_vecs) < len(chunks) or len(sent_vecs) < len(ids):
            return None
        rows = [chunk_vecs[c.id] for c in chunks] + [sent_vecs[i] for i in ids]
        return DocVectors(self.embedding_model, len(chunks), tuple(spans), np.stack(rows))

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
        try:
            got = collection.query(query_embeddings=[vector.tolist()], n_results=n, include=["distances"])
        except Exception:  # another process changed the index under us ("Error finding id"): no hits
            return {}
        return {i: 1.0 - d for i, d in zip(got["ids"][0], got["distances"][0])}

    def chunk_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        return self._vectors(self.chunks, ids)

    def sentence_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        return self._vectors(self.sentences, ids)

    def _vectors(self, collection, ids: list[str]) -> dict[str, np.ndarray]:
        """Vectors of the ids still present (an id removed meanwhile is skipped)."""
        if not ids:
            return {}
        try:
            got = collection.get(ids=ids, include=["embeddings"])
        except Exception:
            return {}
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"])}

    # -- writes --------------------------------------------------------------------------------

    def _batch_size(self) -> int:
        try:
            return max(1, min(1000, int(self.client.get_max_batch_size()) - 1))
        except Exception:
            return 500

    def replace_document(
        self,
        doc: Document,
        chunks: list[Chunk],
        chunk_vectors: np.ndarray,
        sentence_vectors: dict[tuple[int, int], np.ndarray],
        *,
        second: DocVectors | None = None,
    ) -> None:
        """Make the index hold exactly these chunks for `doc`, the old version visible until the switch.

        `chunk_vectors` (len(chunks), dim) float32; `sentence_vectors` maps each sentence's
        `[start, end)` offsets to its (dim,) vector; `second` is the second embedder's vectors, if
        one is set. Raises `StoreError` when the write fails; the old version is then still the
        visible one.
        """
        self.replace_documents(
            [(doc, chunks, chunk_vectors, sentence_vectors)], second={doc.id: second} if second else None
        )

    def replace_documents(
        self,
        writes: list[tuple[Document, list[Chunk], np.ndarray, dict[tuple[int, int], np.ndarray]]],
        *,
        second: dict[str, DocVectors] | None = None,
    ) -> None:
        """`replace_document` for several documents: their records share Chroma batches (a call
        costs ~30 ms however small, measured for issue 11) and one commit makes them all visible.
        `second` (doc id -> its second-embedder vectors) is written in that same commit."""
        versions = [(doc.id, doc.sha256) for doc, *_ in writes]
        sentence_ids, sentence_vecs, sentence_meta = [], [], []
        chunk_ids, chunk_vecs, chunk_texts, chunk_meta = [], [], [], []
        for doc, chunks, vectors, by_span in writes:
            for s, e in sorted(by_span):
                sentence_ids.append(sentence_id(doc.id, s, e, doc.sha256))
                sentence_vecs.append(by_span[s, e])
                sentence_meta.append({"doc_id": doc.id, "doc_sha": doc.sha256, "start": s, "end": e})
            chunk_ids += [c.id for c in chunks]
            chunk_vecs += list(vectors)
            chunk_texts += [c.text for c in chunks]
            chunk_meta += [_chunk_metadata(doc, c) for c in chunks]
        items = [
            (
                DocInfo(
                    id=doc.id,
                    sha256=doc.sha256,
                    chunks=len(chunks),
                    chars=len(doc.text),
                    source=doc.source,
                    pages=doc.page_at(len(doc.text)) or 0,
                ),
                qlexical.encode_chunks(chunks),
            )
            for doc, chunks, *_ in writes
        ]
        self.records.begin_write(versions)
        try:
            self._upsert(self.sentences, sentence_ids, sentence_vecs, None, sentence_meta)
            self._upsert(self.chunks, chunk_ids, chunk_vecs, chunk_texts, chunk_meta)
        except Exception as exc:
            with contextlib.suppress(Exception):  # best effort: the sweep removes what stays
                self._delete_ids(self.chunks, chunk_ids)
                self._delete_ids(self.sentences, sentence_ids)
            self.records.end_write(versions)
            names = ", ".join(d for d, _ in versions)
            raise StoreError(f"Could not write {names} to the index ({exc}); it is unchanged.") from None
        kept = {
            doc.id: [self._kept(chunks, vectors, by_span)]
            + ([second[doc.id].row()] if second and doc.id in second else [])
            for doc, chunks, vectors, by_span in writes
        }
        self._seen = self.records.put_many(items, vectors=kept)
        self.version += 1
        for doc_id, sha in versions:
            self._sweep_document(doc_id, sha)
        self.records.end_write(versions)

    def _kept(self, chunks: list[Chunk], vectors: np.ndarray, by_span: dict) -> tuple:
        """The documents-record row of a document's own vectors (DocVectors.row)."""
        spans = tuple(sorted(by_span))
        rows = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), -1)
        if spans:
            rows = np.concatenate([rows, np.stack([by_span[s] for s in spans])])
        return DocVectors(self.embedding_model, len(chunks), spans, rows).row()

    def _upsert(self, collection, ids, embeddings, documents, metadatas) -> None:
        size = self._batch_size()
        for i in range(0, len(ids), size):
            records = {
                "ids": ids[i : i + size],
                "embeddings": np.stack(embeddings[i : i + size]),
                "metadatas": metadatas[i : i + size],
            }
            if documents is not None:
                records["documents"] = documents[i : i + size]
            collection.upsert(**records)

    def _delete_ids(self, collection, ids: list[str]) -> None:
        size = self._batch_size()
        for i in range(0, len(ids), size):
            collection.delete(ids=ids[i : i + size])

    def _sweep_document(self, doc_id: str, keep_sha: str | None) -> int:
        """Delete every record of `doc_id` that is not of version `keep_sha` (None: all of them)."""
        removed = 0
        for collection in (self.chunks, self.sentences):
            got = collection.get(where={"doc_id": doc_id}, include=["metadatas"])
            stale = [i for i, m in zip(got["ids"], got["metadatas"]) if m.get("doc_sha") != keep_sha]
            self._delete_ids(collection, stale)
            removed += len(stale)
        return removed

    def sweep(self) -> int:
        """Delete the records of writes that started and never finished (killed); returns how many.

        Only the versions the record's `pending` table names are read, never the whole collection.
        """
        removed = 0
        for doc_id, sha in self.records.pending():
            if self.document_sha(doc_id) == sha:  # killed after its commit: keep it, drop the old one
                removed += self._sweep_document(doc_id, sha)
            else:
                removed += self._delete_version(doc_id, sha)
            self.records.end_write([(doc_id, sha)])
        return removed

    def _delete_version(self, doc_id: str, sha: str) -> int:
        removed = 0
        for collection in (self.chunks, self.sentences):
            got = collection.get(where={"$and": [{"doc_id": doc_id}, {"doc_sha": sha}]}, include=[])
            self._delete_ids(collection, got["ids"])
            removed += len(got["ids"])
        return removed

    def remove_document(self, doc_id: str) -> bool:
        """Delete a document (its record first, then its chunks and sentences); False when not indexed."""
        if self.records.get(doc_id) is None:
            return False
        self._seen = self.records.delete(doc_id)
        self.version += 1
        self._sweep_document(doc_id, None)
        return True

    def reset(self) -> None:
        """Drop both collections and every record, and start empty (same embedding model)."""
        self._seen = self.records.clear()
        qlexical.drop(self.lexical_folder())
        for name in (self.name, self.name + SENTENCES_SUFFIX):
            with contextlib.suppress(Exception):  # already gone
                self.client.delete_collection(name)
        self._open()
        self.version += 1


def sentence_id(doc_id: str, start: int, end: int, doc_sha: str = "") -> str:
    """The id of a sentence record: one per distinct span of a document version.

    Example: sentence_id("a.txt", 0, 9, "ab12cd34ef56aa") == "a.txt:ab12cd34ef56:0:9"
    """
    return f"{doc_id}:{doc_sha[:12]}:{start}:{end}"


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
        "page": chunk.page or 0,
        "units": json.dumps(chunk.units),
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
        page=meta.get("page") or None,
        doc_sha=meta["doc_sha"],
        units=tuple(tuple(s) for s in json.loads(meta.get("units") or "[]")),  # none before issue 32
    )
