"""Feedback: a rated answer from the web page, appended as one line of a question set.

A thumbs up or down on the page keeps the turn as a JSONL question-set line
(`Settings.feedback_path`, `.qa/feedback.jsonl`), so rated answers become a question set the
evaluation runner reads like any other (`eval.questions.load`): the answer text is the gold answer
(none when it abstained: the line is then `unanswerable`), its cited sentences the gold evidence,
a follow-up names the turn before it. `save` is the one call the page makes.

Leaves out: reading the lines back (eval.questions) and what the page shows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from qa.types import Answer

_LOCK = threading.Lock()  # one process appends a whole line at a time


class Exchange(Protocol):
    """One turn of a conversation as the web app keeps it (`web.render.Turn` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def question(self) -> str: ...

    @property
    def answer(self) -> Answer | None: ...


def feedback_record(turns: Sequence[Exchange], index: int, *, rating: Literal["up", "down"]) -> dict:
    """`turns[index]` rated, as one question-set line: id, question, lang, doc, answers, evidence, …

    `load` reads the line back as a `Question`: the answer text becomes the gold answer (none when it
    abstained: then `unanswerable`), its cited sentences the gold evidence. A follow-up names the
    turn before it in `follows` and carries the earlier turns as `history` ([question, answer]
    pairs, oldest first); `rating`, `citations` (each with its passage), `mode`, `history` and
    `timestamp` arrive in `Question.extra`. Raises `ValueError` for a turn without an answer.
    """
    turn = turns[index]
    answer = turn.answer
    if answer is None:
        raise ValueError(f"turn {turn.id!r} has no answer to rate")
    data = answer.to_dict()
    citations = [
        {**row, "passage": cite.passage, "passage_start": cite.passage_start}
        for row, cite in zip(data["citations"], answer.citations)
    ]
    record: dict = {
        "id": turn.id,
        "question": turn.question,
        "lang": answer.question_lang,
        "doc": answer.citations[0].doc if answer.citations else None,
        "answers": [] if answer.abstained else [answer.answer],
        "evidence": [c.quote for c in answer.citations],
        "rating": rating,
        "citations": citations,
        "mode": answer.mode,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if answer.abstained:
        record["unanswerable"] = True
    if index > 0:
        # A follow-up: the eval runner rebuilds its history from the earlier turns.
        record["follows"] = turns[index - 1].id
        record["history"] = [[t.question, t.answer.answer] for t in turns[:index] if t.answer]
    return record


def save(path: Path, turns: Sequence[Exchange], index: int, *, rating: Literal["up", "down"]) -> dict:
    """Append `turns[index]` rated to the JSONL file at `path` (made if missing) and return the record.

    Raises `ValueError` for a turn without an answer and `OSError` when the file cannot be written.
    """
    record = feedback_record(turns, index, rating=rating)
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return record
