"""Saved conversations: one SQLite file (stdlib `sqlite3`) of conversations and their turns.

A conversation is an id, a title, its owner (the signed-in user, "" without login) and its turns in
order; each turn is a question with its full answer record (`answer_record`: `Answer.to_dict()` plus
each citation's passage, so a reopened conversation shows its sources again) or an error. The store
is passed to whoever needs it (the web app); `answer_from_record` turns a record back into an
`Answer`.

Example:
    store = ConversationStore(Path(".qa/conversations.sqlite"))
    saved = store.save(None, [StoredTurn("t1", "What did the Kremlin deny?", answer)], owner="")
    store.load(saved.id, owner="")[0].answer.citations[0].quote

Leaves out: rendering (web/render.py), any UI, and sharing conversations between owners.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from qa.answer import Answer, Citation
from qa.errors import InputError
from qa.records import SQLiteStore
from qa.translate import Translation
from qa.types import Item, Recognition, ShortAnswer, WordCheck, WordGloss

TITLE_CHARS = 80  # a conversation's title: its first question, cut to this


@dataclass(frozen=True)
class StoredTurn:
    """One exchange as saved: `answer` is None when the turn ended in `error` (one sentence)."""

    id: str
    question: str
    answer: Answer | None = None
    error: str | None = None


@dataclass(frozen=True)
class Conversation:
    """A saved conversation's summary: `created`/`updated` are Unix times in seconds, `turns` a count."""

    id: str
    title: str
    owner: str
    created: float
    updated: float
    turns: int


def answer_record(answer: Answer) -> dict:
    """`Answer.to_dict()` (the `qa ask --json` object) plus each citation's surrounding passage and its
    offset (and, for a translation, the note saying why none is shown): everything needed to show the
    answer and its sources again (`answer_from_record`)."""
    data = answer.to_dict()
    for key, cites in (("citations", answer.citations), ("closest", answer.closest)):
        for row, cite in zip(data[key], cites):
            row["passage"] = cite.passage
            row["passage_start"] = cite.passage_start
            if cite.translation is not None:
                row["translation"]["note"] = cite.translation.note
            if cite.recognition is not None:  # the page image, to show the sentence on it again
                row["ocr"].update(
                    image=cite.recognition.image, width=cite.recognition.width, height=cite.recognition.height
                )
    return data


def answer_from_record(data: dict) -> Answer:
    """The `Answer` an `answer_record` was made from (timings rounded to 0.1 ms).

    Raises `KeyError`/`TypeError` on a record of another shape (never expected: the store writes them).
    """

    def citation(row: dict) -> Citation:
        t = row.get("translation")
        translation = (
            Translation(
                t["text"],
                t["lang"],
                t["verified"],
                t.get("note"),
                check=WordCheck.from_dict(t["word_check"]) if t.get("word_check") else None,
                rough=t.get("rough"),
            )
            if t
            else None
        )
        o = row.get("ocr")
        recognition = (
            Recognition(
                o["page"],
                o.get("image", ""),
                o.get("width", 1),
                o.get("height", 1),
                tuple(tuple(b) for b in o["boxes"]),
                o["confidence"],
                o["lowest"],
                o["lowest_word"],
            )
            if o
            else None
        )
        return Citation(
            **{k: row[k] for k in ("n", "doc", "chunk_id", "start", "end", "quote", "paragraph", "score")},
            passage=row.get("passage") or row["quote"],
            passage_start=row.get("passage_start", row["start"]),
            page=row.get("page"),
            translation=translation,
            recognition=recognition,
            items=tuple(Item(i["start"], i["end"], i["quote"]) for i in row.get("items", ())),
            gloss=tuple(WordGloss.from_dict(g) for g in row.get("gloss", ())),
        )

    short = data.get("short_answer")
    if short:
        source = {k: short["source"][k] for k in ("n", "doc", "start", "end", "quote")}
        certified = {k: short.get(k) for k in ("confidence", "guarantee", "why_not")}
        check = WordCheck.from_dict(short["word_check"]) if short.get("word_check") else None
        short = ShortAnswer(
            text=short["text"],
            lang=short["lang"],
            verified=short["verified"],
            checked=bool(short.get("checked", False)),  # saved before certification: never checked
            **certified,
            **source,
            check=check,
        )
    return Answer(
        question=data["question"],
        question_lang=data["question_lang"],
        answer=data["answer"],
        mode=data["mode"],
        abstained=data["abstained"],
        citations=tuple(citation(r) for r in data["citations"]),
        timings_ms=dict(data.get("timings_ms") or {}),
        closest=tuple(citation(r) for r in data.get("closest", ())),
        answer_lang=data.get("answer_lang", "en"),
        note=data.get("note"),
        short_answer=short or None,
        signals=dict(data.get("signals") or {}),
        timeouts=tuple(data.get("timeouts") or ()),
    )


class ConversationStore(SQLiteStore):
    """Conversations in one SQLite file; safe to share between threads (one lock, short transactions)."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL,"
        " owner TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);"
        "CREATE TABLE IF NOT EXISTS turns (conversation TEXT NOT NULL, position INTEGER NOT NULL,"
        " id TEXT NOT NULL, question TEXT NOT NULL, answer TEXT, error TEXT,"
        " PRIMARY KEY (conversation, position));"
    )
    WHAT = "conversation store"

    def save(
        self, conversation_id: str | None, turns: Sequence[StoredTurn], *, owner: str = ""
    ) -> Conversation:
        """Write a conversation's turns (all of them, replacing what was saved); None starts a new one.

        The title is kept once set (renamed or not); a new conversation is titled by its first
        question. Returns the saved summary. Raises `InputError` when `turns` is empty or the id
        belongs to another owner.
        """
        if not turns:
            raise InputError("A conversation needs at least one question to be saved.")
        now = time.time()
        with self._lock, self._connect() as db:
            row = None
            if conversation_id:
                row = db.execute(
                    "SELECT owner, title, created FROM conversations WHERE id = ?", (conversation_id,)
                ).fetchone()
                if row and row[0] != owner:
                    raise InputError("This conversation belongs to another user.")
            cid = conversation_id or uuid.uuid4().hex[:12]
            title = row[1] if row else _title(turns[0].question)
            created = row[2] if row else now
            db.execute(
                "INSERT OR REPLACE INTO conversations (id, title, owner, created, updated) VALUES (?,?,?,?,?)",
                (cid, title, owner, created, now),
            )
            db.execute("DELETE FROM turns WHERE conversation = ?", (cid,))
            db.executemany(
                "INSERT INTO turns (conversation, position, id, question, answer, error) VALUES (?,?,?,?,?,?)",
                [
                    (
                        cid,
                        i,
                        t.id,
                        t.question,
                        json.dumps(answer_record(t.answer), ensure_ascii=False) if t.answer else None,
                        t.error,
                    )
                    for i, t in enumerate(turns)
                ],
            )
        return Conversation(cid, title, owner, created, now, len(turns))

    def list(self, *, owner: str = "") -> list[Conversation]:
        """The owner's conversations, most recently updated first."""
        with self._lock, self._connect() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.owner, c.created, c.updated, COUNT(t.position) FROM conversations c"
                " LEFT JOIN turns t ON t.conversation = c.id WHERE c.owner = ?"
                " GROUP BY c.id ORDER BY c.updated DESC",
                (owner,),
            ).fetchall()
        return [Conversation(*row) for row in rows]

    def load(self, conversation_id: str, *, owner: str = "") -> list[StoredTurn]:
        """A conversation's turns in order, answers rebuilt; `InputError` when it is not the owner's."""
        with self._lock, self._connect() as db:
            if not self._owned(db, conversation_id, owner):
                raise InputError("This conversation no longer exists.")
            rows = db.execute(
                "SELECT id, question, answer, error FROM turns WHERE conversation = ? ORDER BY position",
                (conversation_id,),
            ).fetchall()
        return [
            StoredTurn(tid, q, answer_from_record(json.loads(a)) if a else None, err)
            for tid, q, a, err in rows
        ]

    def rename(self, conversation_id: str, title: str, *, owner: str = "") -> None:
        """Set a conversation's title (stripped, at most TITLE_CHARS); `InputError` when empty or unknown."""
        title = " ".join(title.split())
        if not title:
            raise InputError("Type a name for the conversation.")
        with self._lock, self._connect() as db:
            if not self._owned(db, conversation_id, owner):
                raise InputError("This conversation no longer exists.")
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (_title(title), conversation_id))

    def delete(self, conversation_id: str, *, owner: str = "") -> bool:
        """Delete a conversation and its turns; False when the owner has no such conversation."""
        with self._lock, self._connect() as db:
            if not self._owned(db, conversation_id, owner):
                return False
            db.execute("DELETE FROM turns WHERE conversation = ?", (conversation_id,))
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return True

    @staticmethod
    def _owned(db: sqlite3.Connection, conversation_id: str, owner: str) -> bool:
        row = db.execute("SELECT owner FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return row is not None and row[0] == owner


def _title(text: str) -> str:
    """A title from free text: one line, at most TITLE_CHARS characters (with an ellipsis when cut)."""
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"
