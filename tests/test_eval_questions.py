"""Question-set loaders and the seed set: every format, malformed lines, and the seed's gold data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval import questions
from eval.metrics import language
from eval.runner import chains, gold_spans
from qa.answer import Answer, Citation
from qa.errors import InputError
from qa.ingest import read_document
from web.render import Turn

ROOT = Path(__file__).resolve().parent.parent
SEED_SET = ROOT / "eval" / "questions" / "seed.jsonl"
SEED_DOC = ROOT / "seeds" / "000_30343400e31c82a3.txt"


@pytest.fixture(scope="module")
def seed_set() -> questions.QuestionSet:
    return questions.load(SEED_SET, strict=True)


def test_seed_set_size_languages_and_kinds(seed_set):
    qs = seed_set.questions
    assert len(qs) >= 40
    pairs = Counter(q.extra["pair"] for q in qs)
    assert set(pairs.values()) == {2}
    assert all({q.lang for q in qs if q.extra["pair"] == p} == {"en", "ar"} for p in pairs)
    assert all(language(q.question) == q.lang for q in qs)
    assert sum(q.unanswerable for q in qs) >= 8
    assert sum(1 for q in qs if q.follows) >= 4


def test_seed_gold_answers_in_both_languages_and_evidence_is_verbatim(seed_set):
    text = read_document(SEED_DOC).text
    for q in seed_set.questions:
        if q.unanswerable:
            assert not q.answers and not q.evidence, q.id
            continue
        assert {"en", "ar"} <= {language(a) for a in q.answers}, q.id
        assert q.evidence, q.id
        for e in q.evidence:
            assert e in text, (q.id, e)
        assert q.doc == SEED_DOC.name


def test_seed_follow_ups_point_back_to_the_same_language(seed_set):
    by_id = {q.id: q for q in seed_set.questions}
    for q in seed_set.questions:
        if q.follows:
            assert by_id[q.follows].lang == q.lang
            assert seed_set.questions.index(by_id[q.follows]) < seed_set.questions.index(q)


def test_malformed_jsonl_lines_are_reported_with_their_line_number(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "question": "Who?"}\n'
        "{not json\n"
        '{"id": "b"}\n'
        '{"id": "a", "question": "Again?"}\n'
        '{"id": "c", "question": "ماذا؟", "follows": "zzz", "topic": "x"}\n',
        encoding="utf-8",
    )
    qs = questions.load(path)
    assert [q.id for q in qs.questions] == ["a", "c"]
    assert qs.problems[0].startswith("q.jsonl:2: not valid JSON")
    assert any(p.startswith("q.jsonl:3:") and "no `question`" in p for p in qs.problems)
    assert any(p.startswith("q.jsonl:4:") and "duplicate" in p for p in qs.problems)
    c = qs.questions[1]
    assert c.lang == "ar" and c.follows is None and c.extra == {"topic": "x"}
    with pytest.raises(InputError, match=r"q\.jsonl:2"):
        questions.load(path, strict=True)


def test_yaml_and_csv_take_the_same_columns(tmp_path):
    (tmp_path / "q.yaml").write_text(
        "questions:\n"
        "  - id: y1\n    question: Who negotiated?\n    answers: [John Kerry]\n    evidence: [جون كيري]\n"
        "  - id: y2\n    question: How old is Lavrov?\n    unanswerable: true\n"
        "  - just a string\n",
        encoding="utf-8",
    )
    (tmp_path / "q.csv").write_text(
        'id,question,answers,evidence,unanswerable,follows\nc1,Who?,"[""John Kerry"", ""جون كيري""]",جون كيري,,\n'
        "c2,And where?,Moscow|موسكو,,false,c1\nc3,When?,,,yes,\n",
        encoding="utf-8",
    )
    y = questions.load(tmp_path / "q.yaml")
    assert [(q.id, q.answers, q.evidence, q.unanswerable) for q in y.questions] == [
        ("y1", ("John Kerry",), ("جون كيري",), False),
        ("y2", (), (), True),
    ]
    assert y.problems == ["q.yaml: item 3: not an object with `id` and `question`"]
    c = questions.load(tmp_path / "q.csv")
    assert c.questions[0].answers == ("John Kerry", "جون كيري")
    assert c.questions[1].answers == ("Moscow", "موسكو") and c.questions[1].follows == "c1"
    assert c.questions[2].unanswerable and c.questions[1].categories == ["answerable", "follow-up"]


def test_squad_json_becomes_documents_and_gold_spans(tmp_path):
    data = {
        "data": [
            {
                "title": "Kerry visit",
                "paragraphs": [
                    {
                        "context": "زار كيري موسكو.",
                        "qas": [
                            {
                                "id": "1",
                                "question": "من زار موسكو؟",
                                "answers": [{"text": "كيري", "answer_start": 4}],
                            }
                        ],
                    },
                    {
                        "context": "التقى لافروف.",
                        "qas": [{"id": "2", "question": "Who met?", "answers": [], "is_impossible": True}],
                    },
                ],
            }
        ]
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    qs = questions.load(path)
    assert list(qs.doc_texts) == ["Kerry_visit.txt"]
    assert qs.doc_texts["Kerry_visit.txt"] == "زار كيري موسكو.\n\nالتقى لافروف."
    first, second = qs.questions
    assert (first.lang, first.doc, second.unanswerable, second.lang) == ("ar", "Kerry_visit.txt", True, "en")
    spans, missing = gold_spans(first, qs.doc_texts)
    assert spans == [("Kerry_visit.txt", 4, 8)] and not missing


def test_dev_layout_loads_and_offsets_survive_a_byte_order_mark(tmp_path):
    (tmp_path / "articles").mkdir()
    text = "\ufeffبدأت المعاهدات في روما.\n\nثم جاءت ماستريخت."
    (tmp_path / "articles" / "a1.txt").write_text(text, encoding="utf-8")
    (tmp_path / "articles.jsonl").write_text(json.dumps({"article": "a1", "file": "articles/a1.txt"}) + "\n")
    start = text.index("ماستريخت")  # offset in the raw file, BOM included
    rows = [
        {
            "id": "x-qar",
            "question": "ما المعاهدة؟",
            "question_lang": "ar",
            "answers": ["ماستريخت"],
            "article": "a1",
            "article_answer_start": start,
            "answers_en": ["Maastricht"],
            "source": "xquad",
        },
        {
            "id": "x-qen",
            "question": "Which treaty?",
            "question_lang": "en",
            "answers": ["ماستريخت"],
            "article": "a1",
            "article_answer_start": start,
            "source": "xquad",
        },
    ]
    (tmp_path / "questions.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    )
    qs = questions.load(tmp_path)
    assert qs.doc_paths == [tmp_path / "articles" / "a1.txt"]
    assert qs.questions[0].answers == ("ماستريخت", "Maastricht")
    assert qs.questions[0].extra["source"] == "xquad"
    doc = read_document(qs.doc_paths[0])
    spans, missing = gold_spans(qs.questions[1], {doc.id: doc.text})
    assert not missing and doc.text[spans[0][1] : spans[0][2]] == "ماستريخت"


def test_limit_keeps_what_follow_ups_depend_on_and_chains_order_them(seed_set):
    follow = next(q for q in seed_set.questions if q.follows and seed_set.questions.index(q) > 5)
    others = [q for q in seed_set.questions if q.id != follow.id]
    subset = questions.QuestionSet([follow, *others]).limit(1)
    # limit(1) keeps the follow-up and pulls in every question it depends on
    ids = [q.id for q in subset.questions]
    assert follow.id in ids and follow.follows in ids and len(ids) < 5
    for chain in chains(seed_set.questions):
        seen = set()
        for q in chain:
            assert q.follows is None or q.follows in seen
            seen.add(q.id)


def test_unknown_formats_and_empty_sets_are_one_clear_error(tmp_path):
    (tmp_path / "q.txt").write_text("hello")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match=r"use \.jsonl"):
        questions.load(tmp_path / "q.txt")
    with pytest.raises(InputError, match="no usable question"):
        questions.load(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="does not exist"):
        questions.load(tmp_path / "missing.jsonl")


def test_feedback_lines_load_back_as_questions_with_their_history(tmp_path):
    text = read_document(SEED_DOC).text
    quote = "أعلن وزير الخارجية الروسي سيرغي لافروف"
    start = text.index(quote)
    cite = Citation(1, SEED_DOC.name, "c0", start, start + len(quote), quote, 0, 0.71, text[:400], 0)

    def answer(reply: str, *, abstained: bool = False) -> Answer:
        cited, closest = ((), (cite,)) if abstained else ((cite,), ())
        return Answer("?", "en", reply, "extractive", abstained, cited, closest=closest, answer_lang="en")

    first = Turn("t0", "Who negotiated in Moscow?", answer(f"According to the article [1]: «{quote}»"))
    second = Turn(
        "t1", "How old is he?", answer("The article does not answer this question.", abstained=True)
    )
    turns = [first, second, Turn("t2", "Why?", error="The LLM is unreachable.")]
    lines = [questions.feedback_record(turns, i, rating=r) for i, r in ((0, "up"), (1, "down"))]
    path = tmp_path / "feedback.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")

    qs = questions.load(path, strict=True)
    q0, q1 = qs.questions
    assert (q0.id, q0.question, q0.lang, q0.doc) == ("t0", first.question, "en", SEED_DOC.name)
    assert q0.answers == (first.answer.answer,) and q0.evidence == (quote,) and not q0.unanswerable
    assert q0.extra["rating"] == "up" and q0.extra["citations"][0]["passage"] == cite.passage
    assert q1.follows == "t0" and q1.unanswerable and not q1.answers
    assert q1.categories == ["unanswerable", "follow-up"]
    assert q1.extra["history"] == [[first.question, first.answer.answer]] and q1.extra["rating"] == "down"
    assert [[q.id for q in chain] for chain in chains(qs.questions)] == [["t0", "t1"]]

    # A follow-up rated alone still loads: asked alone, with its history kept in `extra`.
    alone = tmp_path / "alone.jsonl"
    alone.write_text(json.dumps(lines[1], ensure_ascii=False) + "\n", encoding="utf-8")
    qs = questions.load(alone)
    assert qs.questions[0].follows is None and "follows 't0'" in qs.problems[0]
    assert qs.questions[0].extra["history"] == [[first.question, first.answer.answer]]
    with pytest.raises(ValueError, match="no answer"):
        questions.feedback_record(turns, 2, rating="up")
