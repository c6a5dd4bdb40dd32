"""Records: the documents record of an index (id, source path, sha256, chunk count, revision) in SQLite.

One small SQLite file beside Chroma's (stdlib `sqlite3`, WAL mode, so several processes can read
while one writes). It is the index's commit point: a document version is visible exactly when its
row names that version's sha256 (qa/store.py writes the new records first, commits the row, then
deletes the old records). Every write bumps the collection's revision, which readers in other
processes compare to notice a change and refresh. `qa docs` reads it instead of scanning chunks.
With a Chroma server (QA_CHROMA_URL) the record still lives in QA_CHROMA_PATH on this machine:
processes that share a server must share that folder too.
The record also keeps each visible chunk's BM25 tokens (table `lexical`, the input of
qa/lexical.py, so the lexical index is rebuilt without reading Chroma), a float16 copy of each
document's chunk and sentence vectors, per embedding model (table `vectors`: the main model's, and
the second embedder's, which exists only here; a question's candidates are scored from it, so no
vector crosses from a Chroma server) and the document versions being written (table `pending`, so
a killed write is swept without scanning the collection).
`SQLiteStore` is the small base of the other SQLite files a process keeps for itself (translations,
saved conversations).
Leaves out: the texts and the nearest-neighbour search (Chroma holds them) and any ranking.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from qa.errors import QAError, StoreError

FILE_NAME = "qa-documents.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    chars INTEGER NOT NULL,
    pages INTEGER NOT NULL DEFAULT 0,
    revision INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS documents_source ON documents (collection, source);
CREATE INDEX IF NOT EXISTS documents_sha ON documents (collection, sha256);
CREATE TABLE IF NOT EXISTS revisions (collection TEXT PRIMARY KEY, revision INTEGER NOT NULL);
-- The lexical index's input (qa/lexical.py): each chunk's id, offsets and BM25 tokens, written in
-- the transaction that makes its document version visible.
CREATE TABLE IF NOT EXISTS lexical (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    chunks TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id)
);
-- A document version's vectors under one embedding model (qa/store.py `DocVectors`): one float16
-- row per chunk (in chunk order), then one per distinct sentence span (`spans`, JSON, sorted).
CREATE TABLE IF NOT EXISTS vectors (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    spans TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vectors BLOB NOT NULL,
    PRIMARY KEY (collection, doc_id, model)
);
-- Document versions being written: what a killed write may have left in Chroma (Store.sweep).
CREATE TABLE IF NOT EXISTS pending (
    collection TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id, sha256)
);
"""


@dataclass(frozen=True)
class DocInfo:
    """One indexed document: its id, text hash, chunks, length in characters, resolved source path,
    page count (0: not paged), and the index revision that wrote it."""

    id: str
    sha256: str
    chunks: int
    chars: int
    source: str = ""
    pages: int = 0
    revision: int = 0


class Records:
    """The documents record of one collection, in `<folder>/qa-documents.sqlite3` (in memory if None).

    Raises `StoreError` when the file cannot be opened or is not a database (damaged index).
    """

    def __init__(self, folder: Path | None, collection: str) -> None:
        self.path = Path(folder) / FILE_NAME if folder is not None else ":memory:"
        self.collection = collection
        self._lock = threading.Lock()
        try:
            if folder is not None:
                Path(folder).mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"The documents record {self.path} is damaged ({exc}); run `python -m qa reset` "
                "to move the index aside and start empty."
            ) from None

    def close(self) -> None:
        self._db.close()

    # -- reads ---------------------------------------------------------------------------------

    def revision(self) -> int:
        """The collection's revision: bumped by every write, from any process."""
        row = self._query("SELECT revision FROM revisions WHERE collection = ?", (self.collection,))
        return row[0][0] if row else 0

    def versions(self) -> dict[str, str]:
        """Every document's visible version: doc id -> sha256 (lighter than `all()`)."""
        rows = self._query("SELECT id, sha256 FROM documents WHERE collection = ?", (self.collection,))
        return dict(rows)

    def get(self, doc_id: str) -> DocInfo | None:
        """The record of one document id, or None."""
        return self._one("id = ?", doc_id)

    def by_source(self, source: str) -> DocInfo | None:
        """The record of the document read from this resolved path, or None."""
        return self._one("source = ?", source)

    def by_sha(self, sha256: str) -> DocInfo | None:
        """A document whose text has this hash, or None."""
        return self._one("sha256 = ?", sha256)

    def all(self) -> list[DocInfo]:
        """Every document of the collection, sorted by id."""
        rows = self._query(
            "SELECT id, sha256, chunks, chars, source, pages, revision FROM documents "
            "WHERE collection = ? ORDER BY id",
            (self.collection,),
        )
        return [DocInfo(*row) for row in rows]

    def _one(self, condition: str, value: str) -> DocInfo | None:
        rows = self._query(
            "SELECT id, sha256, chunks, chars, source, pages, revision FROM documents "
            f"WHERE collection = ? AND {condition} ORDER BY id LIMIT 1",
            (self.collection, value),
        )
        return DocInfo(*rows[0]) if rows else None

    def _query(self, sql: str, params: tuple) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(
                    f"The documents record {self.path} cannot be read ({exc}); run `python -m qa reset` "
                    "to move the index aside and start empty."
                ) from None

    # -- writes (each one transaction that bumps the revision) ----------------------------------

    def lexical(self, doc_ids: list[str] | None = None) -> dict[str, tuple[str, str]]:
        """The stored lexical rows of visible documents: doc id -> (sha256, chunks JSON).

        Only rows whose version is the visible one; `doc_ids` None means every document. A visible
        document without a row (indexed by an earlier version of qa) is simply absent.
        """
        sql = (
            "SELECT l.doc_id, l.sha256, l.chunks FROM lexical l JOIN documents d "
            "ON d.collection = l.collection AND d.id = l.doc_id AND d.sha256 = l.sha256 "
            "WHERE l.collection = ?"
        )
        if doc_ids is None:
            rows = self._query(sql, (self.collection,))
        else:
            rows = []
            for i in range(0, len(doc_ids), 500):  # SQLite's bound-parameter limit
                part = doc_ids[i : i + 500]
                rows += self._query(
                    sql + f" AND l.doc_id IN ({','.join('?' * len(part))})", (self.collection, *part)
                )
        return {doc_id: (sha, chunks) for doc_id, sha, chunks in rows}

    def vectors(self, doc_ids: list[str], model: str) -> dict[str, tuple]:
        """Stored vector rows of these visible documents under embedding model `model`:
        doc id -> (sha256, chunks, spans JSON, dim, float16 bytes). Absent: no row for that version."""
        sql = (
            "SELECT v.doc_id, v.sha256, v.chunks, v.spans, v.dim, v.vectors FROM vectors v "
            "JOIN documents d ON d.collection = v.collection AND d.id = v.doc_id AND d.sha256 = v.sha256 "
            "WHERE v.collection = ? AND v.model = ?"
        )
        rows = []
        for i in range(0, len(doc_ids), 500):  # SQLite's bound-parameter limit
            part = doc_ids[i : i + 500]
            rows += self._query(
                sql + f" AND v.doc_id IN ({','.join('?' * len(part))})", (self.collection, model, *part)
            )
        return {doc_id: rest for doc_id, *rest in rows}

    def missing_vectors(self, model: str) -> list[str]:
        """Visible documents with no vector row of `model` for their version, sorted."""
        rows = self._query(
            "SELECT d.id FROM documents d LEFT JOIN vectors v ON v.collection = d.collection "
            "AND v.doc_id = d.id AND v.sha256 = d.sha256 AND v.model = ? "
            "WHERE d.collection = ? AND v.doc_id IS NULL ORDER BY d.id",
            (model, self.collection),
        )
        return [r[0] for r in rows]

    def pending(self) -> list[tuple[str, str]]:
        """Document versions whose write started and did not finish: (doc id, sha256) pairs."""
        rows = self._query("SELECT doc_id, sha256 FROM pending WHERE collection = ?", (self.collection,))
        return [(d, s) for d, s in rows]

    # -- writes (each one transaction; those that change what readers see bump the revision) ----

    def put(self, info: DocInfo, *, lexical: str | None = None) -> int:
        """Insert or replace a document's record (and its lexical row); returns the new revision."""
        return self.put_many([(info, lexical)])

    def put_many(
        self, items: list[tuple[DocInfo, str | None]], *, vectors: dict[str, list[tuple]] | None = None
    ) -> int:
        """Insert or replace several documents' records and lexical rows in one transaction (one
        revision: all become visible together); returns the new revision. `vectors` maps a doc id
        to its vector rows (model, chunks, spans JSON, dim, float16 bytes), one per model, written
        in the same transaction."""
        statements = []
        shas = {info.id: info.sha256 for info, _ in items}
        for doc_id, rows in (vectors or {}).items():
            statements += [_put_vectors(self.collection, doc_id, shas[doc_id], row) for row in rows]
        for info, lexical in items:
            statements.append(
                (
                    "INSERT OR REPLACE INTO documents (collection, id, source, sha256, chunks, chars, "
                    "pages, revision) VALUES (?, ?, ?, ?, ?, ?, ?, :revision)",
                    (self.collection, info.id, info.source, info.sha256, info.chunks, info.chars, info.pages),
                )
            )
            if lexical is not None:
                statements.append(_put_lexical(self.collection, info.id, info.sha256, lexical))
        return self._write(statements)

    def put_lexical(self, doc_id: str, sha256: str, chunks: str) -> None:
        """Store a lexical row for an already visible version (no revision bump: readers see no change)."""
        self._write([_put_lexical(self.collection, doc_id, sha256, chunks)], bump=False)

    def put_vectors(self, doc_id: str, sha256: str, row: tuple) -> None:
        """Store a vector row for an already visible version (no revision bump: readers see no change)."""
        self._write([_put_vectors(self.collection, doc_id, sha256, row)], bump=False)

    def delete(self, doc_id: str) -> int:
        """Remove a document's record; returns the new revision."""
        return self._write(
            [
                (f"DELETE FROM {table} WHERE collection = ? AND {key} = ?", (self.collection, doc_id))
                for table, key in (("documents", "id"), ("lexical", "doc_id"), ("vectors", "doc_id"))
            ]
        )

    def clear(self) -> int:
        """Remove every record of the collection; returns the new revision."""
        return self._write(
            [
                (f"DELETE FROM {table} WHERE collection = ?", (self.collection,))
                for table in ("documents", "lexical", "vectors", "pending")
            ]
        )

    def begin_write(self, versions: list[tuple[str, str]]) -> None:
        """Note that records of these (doc id, sha256) versions are about to be written to Chroma."""
        self._write(
            [
                ("INSERT OR IGNORE INTO pending VALUES (?, ?, ?)", (self.collection, d, s))
                for d, s in versions
            ],
            bump=False,
        )

    def end_write(self, versions: list[tuple[str, str]]) -> None:
        """Note that the writes of these versions finished (committed and swept, or rolled back)."""
        sql = "DELETE FROM pending WHERE collection = ? AND doc_id = ? AND sha256 = ?"
        self._write([(sql, (self.collection, d, s)) for d, s in versions], bump=False)

    def _write(self, statements: list[tuple[str, tuple]], *, bump: bool = True) -> int:
        """Run `statements` in one transaction; with `bump`, first bump the revision (returned)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    revision = 0
                    if bump:
                        self._db.execute(
                            "INSERT INTO revisions (collection, revision) VALUES (?, 1) "
                            "ON CONFLICT (collection) DO UPDATE SET revision = revision + 1",
                            (self.collection,),
                        )
                        revision = self._db.execute(
                            "SELECT revision FROM revisions WHERE collection = ?", (self.collection,)
                        ).fetchone()[0]
                    for sql, params in statements:
                        self._db.execute(sql.replace(":revision", str(revision)), params)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"Could not update the documents record {self.path} ({exc}).") from None
        return revision


def _put_lexical(collection: str, doc_id: str, sha256: str, chunks: str) -> tuple[str, tuple]:
    return ("INSERT OR REPLACE INTO lexical VALUES (?, ?, ?, ?)", (collection, doc_id, sha256, chunks))


def _put_vectors(collection: str, doc_id: str, sha256: str, row: tuple) -> tuple[str, tuple]:
    return (
        "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (collection, doc_id, sha256, *row),
    )


class SQLiteStore:
    """A small SQLite file (stdlib `sqlite3`) created with the subclass's `SCHEMA` on first use; one
    lock serialises this process's use of it. `WHAT` names the file in errors."""

    SCHEMA = ""
    WHAT = "store"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(self.SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        """A connection (use it as a context manager: one transaction); `QAError` when it cannot open."""
        try:
            return sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise QAError(f"The {self.WHAT} {self.path} cannot be opened ({exc}).") from exc


@dataclass(frozen=True)
class DocVectors:
    """A document version's vectors under one embedding model, as the documents record keeps them.

    `vectors` is (chunks + len(spans), dim) float32, L2-normalised: one row per chunk in chunk
    order, then one per distinct sentence span `[start, end)` in `spans` (sorted). Kept in the
    documents record as float16 (half the bytes; cosine changes by < 1e-3).
    """

    model: str
    chunks: int
    spans: tuple[tuple[int, int], ...]
    vectors: np.ndarray

    def chunk(self, index: int) -> np.ndarray:
        """The vector of chunk number `index` (0-based)."""
        return self.vectors[index]

    def sentence(self, start: int, end: int) -> np.ndarray | None:
        """The vector of the sentence at `[start, end)`, or None when the document has no such span."""
        i = self.row_of(start, end)
        return None if i is None else self.vectors[i]

    def row_of(self, start: int, end: int) -> int | None:
        """The row of `vectors` holding the sentence at `[start, end)`, or None."""
        return self._rows.get((start, end))

    @cached_property
    def _rows(self) -> dict[tuple[int, int], int]:
        return {span: self.chunks + i for i, span in enumerate(self.spans)}

    def row(self) -> tuple:
        """The documents-record row: (model, chunks, spans JSON, dim, float16 bytes)."""
        data = np.ascontiguousarray(self.vectors, dtype=np.float16)
        return (self.model, self.chunks, json.dumps(self.spans), data.shape[1], data.tobytes())

    @classmethod
    def from_row(cls, model: str, chunks: int, spans: str, dim: int, data: bytes) -> DocVectors:
        vectors = np.frombuffer(data, dtype=np.float16).reshape(-1, dim).astype(np.float32)
        return cls(model, chunks, tuple(tuple(s) for s in json.loads(spans)), vectors)
