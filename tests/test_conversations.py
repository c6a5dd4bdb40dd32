"""qa.conversations: saved conversations in SQLite, answers rebuilt with their sources.

Answers come from the assistant over the seed article (the fast lane's hash embedder: the store is
plumbing; what it keeps is whatever the pipeline returns), plus a short answer and a translation
added by hand so that every field of an `Answer` makes the round trip.
"""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from qa.conversations import ConversationStore, StoredTurn, answer_from_record, answer_record
from qa.errors import InputError
from qa.translate import Translation
from qa.types import ShortAnswer


def rounded(answer):
    """The answer as a record rounds timings to 0.1 ms: compare everything else exactly."""
    return dataclasses.replace(answer, timings_ms={k: round(v, 1) for k, v in answer.timings_ms.items()})


@pytest.fixture
def turns(fast_seeded):
    first = fast_seeded.ask("What did the Kremlin deny?")  # abstains with the hash embedder: closest kept
    second = fast_seeded.ask("أين غرفة العمليات المشتركة الروسية الأميركية؟")
    c = second.citations[0]
    short = ShortAnswer("في الأردن", "ar", True, c.n, c.doc, c.start, c.start + 3, c.quote[:3])
    translated = dataclasses.replace(c, translation=Translation(None, "en", False, "a number is missing"))
    second = dataclasses.replace(second, short_answer=short, citations=(translated, *second.citations[1:]))
    return [
        StoredTurn("t1", first.question, first),
        StoredTurn("t2", second.question, second),
        StoredTurn("t3", "?", None, "The question is empty."),
    ]


def test_a_saved_conversation_reopens_with_its_answers_and_sources(tmp_path, turns):
    path = tmp_path / "conversations.sqlite"
    saved = ConversationStore(path).save(None, turns)
    assert saved.title == "What did the Kremlin deny?" and saved.turns == 3
    store = ConversationStore(path)  # a new process: nothing kept in memory
    assert [(c.id, c.title, c.turns) for c in store.list()] == [(saved.id, saved.title, 3)]
    loaded = store.load(saved.id)
    assert [t.id for t in loaded] == ["t1", "t2", "t3"] and loaded[2].error == "The question is empty."
    for before, after in zip(turns[:2], loaded[:2]):
        assert after.answer == rounded(before.answer)  # citations, passages, short answer, translation
        shown = after.answer.citations or after.answer.closest
        assert shown and all(c.passage for c in shown)
    assert loaded[1].answer.citations[0].translation.note == "a number is missing"


def test_rename_delete_owners_and_updates(tmp_path, turns):
    store = ConversationStore(tmp_path / "c.sqlite")
    mine = store.save(None, turns[:1], owner="ana")
    store.save(None, turns[1:2], owner="ben")
    assert [c.owner for c in store.list(owner="ana")] == ["ana"]
    with pytest.raises(InputError, match="no longer exists"):
        store.load(mine.id, owner="ben")
    with pytest.raises(InputError, match="another user"):
        store.save(mine.id, turns, owner="ben")
    store.rename(mine.id, "  Kremlin \n denial ", owner="ana")
    again = store.save(mine.id, turns[:2], owner="ana")  # a new turn keeps the chosen title
    assert (again.id, again.title, again.turns) == (mine.id, "Kremlin denial", 2)
    with pytest.raises(InputError, match="Type a name"):
        store.rename(mine.id, "   ", owner="ana")
    assert not store.delete(mine.id, owner="ben") and store.delete(mine.id, owner="ana")
    assert store.list(owner="ana") == []
    with sqlite3.connect(tmp_path / "c.sqlite") as db:  # its turns went with it
        assert db.execute("SELECT COUNT(*) FROM turns WHERE conversation = ?", (mine.id,)).fetchone() == (0,)
    with pytest.raises(InputError):
        store.save(None, [])


def test_record_is_the_ask_json_object_plus_passages(turns):
    answer = turns[1].answer
    record = answer_record(answer)
    assert {k: v for k, v in record.items() if k not in ("citations", "closest")} == {
        k: v for k, v in answer.to_dict().items() if k not in ("citations", "closest")
    }
    row = record["citations"][0]
    assert row["passage"][row["start"] - row["passage_start"] :][: len(row["quote"])] == row["quote"]
    assert answer_from_record(record) == rounded(answer)


def test_a_scanned_citation_reopens_with_its_page_image_and_boxes(turns):
    from dataclasses import replace

    from qa.types import Recognition

    answer = turns[1].answer
    found = Recognition(2, "/kept/page-2.png", 2480, 3508, ((10, 20, 30, 40),), 0.9, 0.5, "كيري")
    scanned = replace(
        answer, citations=(replace(answer.citations[0], recognition=found), *answer.citations[1:])
    )
    import json

    assert (
        answer_from_record(json.loads(json.dumps(answer_record(scanned)))).citations[0].recognition == found
    )
