"""The lexical index: bm25s scores, exact after writes without a rebuild, saved and reopened."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import Counter

import numpy as np
import pytest

from qa import lexical as qlexical
from qa import text
from qa.config import SEED_DOCUMENT
from qa.ingest import chunk_document, read_document
from qa.records import DocInfo, Records

QUERIES = ["ماذا نفى الكرملين؟", "غرفة العمليات المشتركة", "كايل أورتن هنري جاكسون", "روسيا سوريا"]


def okapi(corpus: list[list[str]], query: list[str], *, k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """The hand-written BM25 qa used before bm25s (the oracle for "ranks the same as today")."""
    tfs = [Counter(d) for d in corpus]
    avg = sum(len(d) for d in corpus) / len(corpus)
    df = Counter(t for tf in tfs for t in tf)
    out = []
    for d, tf in zip(corpus, tfs):
        norm = k1 * (1 - b + b * len(d) / avg)
        out.append(
            sum(
                math.log(1 + (len(corpus) - df[t] + 0.5) / (df[t] + 0.5)) * tf[t] * (k1 + 1) / (tf[t] + norm)
                for t in set(query)
                if t in tf
            )
        )
    return np.asarray(out)


def fresh(corpus: list[list[str]], query: list[str]) -> np.ndarray:
    """bm25s itself, built over exactly these rows."""
    return qlexical.bm25_query(qlexical.build_bm25(corpus), query, n_rows=len(corpus))


def seed_chunks(doc_id: str = "seed.txt", *, text_override: str | None = None):
    """A document (the seed article, or `text_override`) under `doc_id`, and its chunks."""
    doc = dataclasses.replace(read_document(SEED_DOCUMENT), id=doc_id)
    if text_override is not None:
        sha = hashlib.sha256(text_override.encode()).hexdigest()
        doc = dataclasses.replace(doc, text=text_override, sha256=sha)
    return doc, chunk_document(doc, count_tokens=lambda s: len(s.split()), max_tokens=60)


def put(records: Records, doc, chunks) -> int:
    info = DocInfo(id=doc.id, sha256=doc.sha256, chunks=len(chunks), chars=len(doc.text))
    return records.put(info, lexical=qlexical.encode_chunks(chunks))


def test_bm25_prefers_chunks_with_rare_query_terms():
    docs = [text.tokens(d) for d in ["نفى الكرملين الخبر", "قال الوزير في موسكو", "الوزير والخبر في موسكو"]]
    scores = qlexical.bm25_query(qlexical.build_bm25(docs), text.tokens("ماذا نفى الكرملين؟"), n_rows=3)
    assert scores.argmax() == 0 and scores[1] == 0


def test_bm25s_ranks_as_the_earlier_okapi_bm25_did():
    _, chunks = seed_chunks()
    corpus = [text.tokens(c.text) for c in chunks]
    bm25 = qlexical.build_bm25(corpus)
    for q in QUERIES:
        query = text.tokens(q)
        ours = qlexical.bm25_query(bm25, query, n_rows=len(corpus))
        old = okapi(corpus, query)
        assert old.max() > 0
        # the same scores up to Lucene's dropped constant (k1 + 1): the same ranking
        np.testing.assert_allclose(ours * (1 + qlexical.K1), old, rtol=1e-5, atol=1e-6)


def test_exact_scores_equal_a_fresh_bm25s_index_after_writes_without_a_rebuild(tmp_path, monkeypatch):
    monkeypatch.setattr(qlexical, "SMALL_COLLECTION", 0)  # never rebuild at once …
    monkeypatch.setattr(qlexical, "COMPACT_SHARE", 100.0)  # … nor in the background
    records = Records(tmp_path, "docs")
    a, a_chunks = seed_chunks("a.txt")
    b, b_chunks = seed_chunks("b.txt")
    put(records, a, a_chunks)
    index = qlexical.LexicalIndex(records, tmp_path / "lexical")
    index.refresh(put(records, b, b_chunks))
    base_revision = index._view.base.revision

    # replace b with its second half, add c, remove a: all after the base was built
    half = b.text[len(b.text) // 2 :]
    b2, b2_chunks = seed_chunks("b.txt", text_override=half)
    put(records, b2, b2_chunks)
    c, c_chunks = seed_chunks("c.txt", text_override=a.text[: len(a.text) // 3])
    put(records, c, c_chunks)
    index.refresh(records.delete("a.txt"))
    assert index._view.base.revision == base_revision  # served from base + delta
    assert index._view.changed > 0

    visible = b2_chunks + c_chunks
    corpus = [text.tokens(ch.text) for ch in visible]
    assert len(index) == len(visible)
    for q in QUERIES:
        query = text.tokens(q)
        expected = fresh(corpus, query)
        got = index.scores(query, [ch.text for ch in visible])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        top = index.top(query, 5)
        assert set(top) <= {ch.id for ch in visible}  # a removed or replaced chunk never comes back
        if expected.max() > 0:
            assert visible[int(expected.argmax())].id in top


def test_idf_after_writes_equals_the_count_of_visible_chunks_holding_each_term(tmp_path, monkeypatch):
    monkeypatch.setattr(qlexical, "SMALL_COLLECTION", 0)
    monkeypatch.setattr(qlexical, "COMPACT_SHARE", 100.0)
    records = Records(tmp_path, "docs")
    a, a_chunks = seed_chunks("a.txt")
    b, b_chunks = seed_chunks("b.txt", text_override=a.text[: len(a.text) // 2])
    index = qlexical.LexicalIndex(records, tmp_path / "lexical")
    index.refresh(put(records, a, a_chunks))
    index.refresh(put(records, b, b_chunks))  # b lives in the delta
    corpus = [set(text.tokens(ch.text)) for ch in a_chunks + b_chunks]
    terms = list(dict.fromkeys(text.tokens("نفى الكرملين غرفة العمليات المشتركة في الأردن باريس")))
    df = np.array([sum(t in chunk for chunk in corpus) for t in terms])
    expected = np.log1p((len(corpus) - df + 0.5) / (df + 0.5))
    np.testing.assert_allclose(index.idf(terms), expected)
    assert df[-1] == 0 and index.idf(terms)[-1] == index.idf(terms).max()  # "باريس": never in the article


def test_query_coverage_weighs_the_terms_a_passage_holds():
    weights = np.array([1.0, 3.0, 0.5])
    assert qlexical.query_coverage(["a", "b", "c"], ["b", "x"], weights) == pytest.approx(3.0 / 4.5)
    assert qlexical.query_coverage(["a", "b", "c"], [], weights) == 0.0
    assert qlexical.query_coverage(["a", "b", "c"], ["c", "b", "a"], weights) == pytest.approx(1.0)
    assert qlexical.query_coverage([], ["a"], np.array([])) == 1.0  # nothing asked, nothing missing


def test_a_second_process_opens_the_saved_index_instead_of_rebuilding_it(tmp_path):
    records = Records(tmp_path, "docs")
    doc, chunks = seed_chunks()
    revision = put(records, doc, chunks)
    qlexical.LexicalIndex(records, tmp_path / "lexical").refresh(revision)
    assert (tmp_path / "lexical" / f"rev-{revision:012d}" / "meta.json").exists()

    records._db.execute("DELETE FROM lexical")  # a rebuild would now find no tokens
    reopened = qlexical.LexicalIndex(Records(tmp_path, "docs"), tmp_path / "lexical")
    reopened.refresh(revision)
    assert len(reopened) == len(chunks)
    assert reopened.top(text.tokens("ماذا نفى الكرملين؟"), 3)


def test_a_write_by_another_process_is_seen_at_the_next_refresh(tmp_path):
    records = Records(tmp_path, "docs")
    doc, chunks = seed_chunks()
    index = qlexical.LexicalIndex(records, tmp_path / "lexical")
    index.refresh(put(records, doc, chunks))
    other = Records(tmp_path, "docs")  # another writer, its own connection
    note, note_chunks = seed_chunks("note.txt", text_override="تفتح حديقة الأزهر أبوابها في التاسعة صباحاً.")
    revision = put(other, note, note_chunks)
    assert index._view.revision != revision
    index.refresh(records.revision())
    assert note_chunks[0].id in index.top(text.tokens("حديقة الأزهر"), 3)


def test_a_damaged_saved_index_is_rebuilt_from_the_record(tmp_path, caplog):
    records = Records(tmp_path, "docs")
    doc, chunks = seed_chunks()
    revision = put(records, doc, chunks)
    qlexical.LexicalIndex(records, tmp_path / "lexical").refresh(revision)
    (tmp_path / "lexical" / f"rev-{revision:012d}" / "meta.json").write_text("{not json", encoding="utf-8")
    index = qlexical.LexicalIndex(records, tmp_path / "lexical")
    index.refresh(revision)
    assert len(index) == len(chunks)
    assert "unreadable" in caplog.text


def test_sentences_map_to_the_chunks_that_contain_them(tmp_path):
    records = Records(tmp_path, "docs")
    doc, chunks = seed_chunks()
    index = qlexical.LexicalIndex(records, None)
    index.refresh(put(records, doc, chunks))
    for chunk in chunks[:5]:
        for start, end in chunk.sentences:
            found = index.chunks_of_sentence(doc.id, doc.sha256[:12], start, end)
            assert chunk.id in found
            assert all(c.start <= start and end <= c.end for c in chunks if c.id in found)
    assert index.chunks_of_sentence(doc.id, "000000000000", 0, 5) == []  # another version
    assert index.chunk_ids(doc.id) == tuple(c.id for c in chunks)


def test_an_index_written_before_the_record_kept_tokens_is_backfilled(fast_seeded):
    store = fast_seeded.store
    [info] = store.documents()
    store.records._db.execute("DELETE FROM lexical")
    qlexical.drop(store.lexical_folder())
    from qa.assistant import Assistant

    again = Assistant(fast_seeded.settings)
    hits = again.retriever.retrieve("ماذا نفى الكرملين؟").hits
    assert any(h.lexical > 0 for h in hits)
    assert info.id in store.records.lexical()  # stored for next time


@pytest.mark.parametrize("kind", ["empty", "unknown"])
def test_queries_with_no_known_term_score_zero(tmp_path, kind):
    records = Records(tmp_path, "docs")
    doc, chunks = seed_chunks()
    index = qlexical.LexicalIndex(records, None)
    index.refresh(put(records, doc, chunks))
    query = [] if kind == "empty" else ["zzzqqq"]
    assert index.top(query, 5) == []
    assert not index.scores(query, [c.text for c in chunks]).any()


def test_a_base_another_process_rebuilt_is_adopted_instead_of_rebuilding(tmp_path, monkeypatch):
    monkeypatch.setattr(qlexical, "SMALL_COLLECTION", 0)  # a rebuild would go to the background
    records = Records(tmp_path, "docs")
    a, a_chunks = seed_chunks("a.txt")
    mine = qlexical.LexicalIndex(records, tmp_path / "lexical")
    mine.refresh(put(records, a, a_chunks))
    b, b_chunks = seed_chunks("b.txt")
    revision = put(Records(tmp_path, "docs"), b, b_chunks)  # another process writes …
    qlexical.LexicalIndex(Records(tmp_path, "docs"), tmp_path / "lexical").refresh(revision, background=False)
    mine.refresh(revision)  # … and saves a new base: this process loads it
    assert mine._compacting is None
    assert mine._view.base.revision == revision and mine._view.changed == 0
    assert len(mine) == len(a_chunks) + len(b_chunks)
