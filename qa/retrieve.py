"""Retrieve: rank chunks for a question, then pick the evidence sentences inside the best ones.

Hybrid and aware of the question's language. Dense scores come from the chunk vector and the best
sentence vector of each chunk (a question usually targets one sentence, which a whole-paragraph
vector dilutes). BM25 (qa/lexical.py, bm25s) over normalised, lightly stemmed Arabic tokens is fused in only for Arabic
questions: measured on the dev benchmark, it has no signal for English questions over Arabic text
and plain rank fusion drops English R@1 from 0.79 to 0.24. Scores are fused as weighted sums, not
ranks, so a confident dense match is not outvoted by a weak lexical one. A second embedder
(`QA_SECOND_EMBEDDING_MODEL`, multilingual-E5 by default) rescores the candidates: its chunk and
best-sentence similarity, built the same way, is mixed into the dense part of the ranking score
(bench/bench_fusion.py: dev R@1 0.841 -> 0.878 ar, 0.889 -> 0.898 en held out). It only rescores,
it never adds candidates: the candidates already hold the gold chunk for every dev question. The
evidence scores (and so abstention) use the main model's similarities only, as calibrated; the
citation rank (`Evidence.rank`) also mixes in the second embedder, weighs the question's words by
their rarity among the evidence sentences, and demotes a sentence without a number or a time for a
question that asks one ("when", «كم»: qa.answer_checks). When the
best sentence announces an enumeration ("three new projects", a closing colon) and list items or
table rows follow it (`Chunk.units`, kept by ingest), they join it as its `Evidence.items`, read
from the chunks after it when the list runs past its chunk; nothing is rescored.
Candidate chunks are fetched from the store by id and scored with the vectors the documents record
keeps (Chroma only finds the nearest ones): nothing here holds or scans the whole collection.
Leaves out: answer wording (answer.py) and LangChain types (chain.py).
"""

from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa import citerank
from qa import text as qtext
from qa.answer_checks import asks_number_or_time, fits_question
from qa.errors import ModelError
from qa.lexical import LexicalIndex, query_coverage
from qa.store import sentence_id
from qa.types import Chunk, Item
from qa.types import Evidence as Evidence  # re-exported: the stages name them as qa.retrieve's
from qa.types import Hit as Hit
from qa.types import Retrieval as Retrieval

# At most this many list items or table rows join the sentence that announces them: a display bound
# (a long table's rows are each evidence in their own right), not a measured one.
MAX_ITEMS = 12


def _coverage(
    language: str, q_tokens: list[str], hits, evidence, lexical_index: LexicalIndex
) -> float | None:
    """`Retrieval.coverage`: the question's idf-weighted words found in the best evidence's chunk."""
    if language != "ar" or not evidence or not q_tokens:
        return None
    chunk = next((h.chunk for h in hits if h.chunk.id == evidence[0].chunk_id), None)
    if chunk is None or qtext.detect_language(chunk.text) != "ar":
        return None
    terms = list(dict.fromkeys(q_tokens))
    return query_coverage(terms, qtext.tokens(chunk.text), lexical_index.idf(terms))


class Retriever:
    """Ranks the chunks of one store for a question under one settings object, with the main
    embedder and, when given, a second one whose vectors the store keeps (qa.store.DocVectors)."""

    def __init__(self, store, embedder, settings, *, second=None) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.second = second
        self._lexical = LexicalIndex(
            store.records, store.lexical_folder(), missing=store.lexical_rows_from_chroma
        )

    def lexical(self, *, background: bool = True) -> LexicalIndex:
        """The lexical index, current with the store (any process may write: the revision says when)."""
        self._lexical.refresh(self.store.revision(), background=background)
        return self._lexical

    def retrieve(self, question: str, *, k: int | None = None) -> Retrieval:
        """The top `k` chunks for `question` and the evidence sentences inside them."""
        s = self.settings
        k = k or s.k
        t0 = time.perf_counter()
        language = qtext.detect_language(question)
        lexical_index = self.lexical()
        if not len(lexical_index):
            return Retrieval(question, language, (), (), {"retrieve": 0.0})
        q = self.embedder.encode_query(question)
        t_embed = time.perf_counter()

        # Candidates: nearest chunks, chunks of the nearest sentences, and (Arabic) best BM25 chunks.
        dense = self.store.query_chunks(q, s.candidates)
        near_sentences = self.store.query_sentences(q, s.candidates)
        candidates = dict.fromkeys(dense)
        for sid in near_sentences:
            doc_id, sha, start, end = sid.rsplit(":", 3)
            candidates.update(
                dict.fromkeys(lexical_index.chunks_of_sentence(doc_id, sha, int(start), int(end)))
            )
        q_tokens = qtext.tokens(question)
        use_lexical = language == "ar" and s.lexical_weight > 0
        if use_lexical:
            candidates.update(dict.fromkeys(lexical_index.top(q_tokens, s.candidates)))
        # Fetched by id; vectors only for those the dense query did not score.
        chunks = self.store.get_chunks(list(candidates))
        chunks.sort(key=lambda c: (c.doc_id, c.index))  # equal scores keep document order
        lexical = (
            lexical_index.scores(q_tokens, [c.text for c in chunks]) if use_lexical else np.zeros(len(chunks))
        )

        # Exact similarities for every candidate chunk and every sentence inside one, from the
        # vectors the documents record keeps (Chroma is asked only for documents kept without them).
        kept = self.store.doc_vectors({c.doc_id: c.doc_sha for c in chunks})
        chunk_sims, sent_sim = _similarities(chunks, kept, q)
        far = [c for c in chunks if c.doc_id not in kept]
        chunk_vecs = self.store.chunk_vectors([c.id for c in far if c.id not in dense])
        chunk_sims.update({i: float(v @ q) for i, v in chunk_vecs.items()})
        far_sentences = sorted({sentence_id(c.doc_id, a, b, c.doc_sha) for c in far for a, b in c.sentences})
        sent_sim.update({sid: float(v @ q) for sid, v in self.store.sentence_vectors(far_sentences).items()})

        dense_scores, best_sentences = [], []
        for chunk in chunks:
            chunk_sim = dense.get(chunk.id)  # Chroma's own similarity for its nearest chunks
            if chunk_sim is None:
                chunk_sim = chunk_sims.get(chunk.id, 0.0)
            best_sentence = max(
                (
                    sent_sim.get(sentence_id(chunk.doc_id, a, b, chunk.doc_sha), 0.0)
                    for a, b in chunk.sentences
                ),
                default=0.0,
            )
            best_sentences.append(best_sentence)
            dense_scores.append((1 - s.sentence_weight) * chunk_sim + s.sentence_weight * best_sentence)
        if not chunks:
            return Retrieval(question, language, (), (), {"retrieve": (time.perf_counter() - t0) * 1000})
        fused = np.asarray(dense_scores)
        second, second_embed_ms, second_sent_sim = self._second_scores(question, chunks)
        if second is not None:
            w = s.second_embedding_weight
            fused = (1 - w) * fused + w * second
        # Dense and BM25 live on different scales: min-max both over the candidates before mixing.
        if use_lexical:
            w = s.lexical_weight
            fused = (1 - w) * _minmax(fused) + w * _minmax(lexical)
        hits = [
            Hit(c, float(f), float(d), float(b), float(x), None if second is None else float(second[i]))
            for i, (c, f, d, b, x) in enumerate(zip(chunks, fused, dense_scores, best_sentences, lexical))
        ]
        hits.sort(key=lambda h: h.score, reverse=True)
        hits = hits[:k]
        t_rank = time.perf_counter()

        ranker = _learned(s).get(language) if s.cite_ranker == "learned" else None
        evidence = self._evidence(question, q_tokens, hits, sent_sim, second_sent_sim, ranker=ranker)
        if evidence:  # the sentence cited first, with the list items or table rows it announces
            first = max(range(len(evidence)), key=lambda i: evidence[i].cite_score)
            evidence[first] = self._with_items(evidence[first], hits, lexical_index)
        coverage = _coverage(language, q_tokens, hits, evidence, lexical_index)
        t_end = time.perf_counter()
        timings = {
            "embed": (t_embed - t0) * 1000 + second_embed_ms,
            "rank": (t_rank - t_embed) * 1000 - second_embed_ms,
            "evidence": (t_end - t_rank) * 1000,
            "retrieve": (t_end - t0) * 1000,
        }
        margin = None if ranker is None else s.cite_logit_margin
        return Retrieval(
            question, language, tuple(hits), tuple(evidence), timings, coverage=coverage, cite_margin=margin
        )

    def _with_items(self, best: Evidence, hits, lexical_index: LexicalIndex) -> Evidence:
        """`best` with the list items or table rows that follow it when it announces them
        (`qtext.announces_enumeration`): the units (`Chunk.units`) right after it in document order,
        at most `MAX_ITEMS`, read from its chunk and the chunks after it."""
        if not qtext.announces_enumeration(best.text):
            return best
        chunk = next(h.chunk for h in hits if h.chunk.id == best.chunk_id)
        after = [s for s in chunk.sentences if s[0] >= best.end]
        if after and tuple(after[0]) not in set(map(tuple, chunk.units)):
            return best  # the next sentence is not an item: no fetch
        chunks = [chunk]
        if not after or all(tuple(s) in set(map(tuple, chunk.units)) for s in after):
            ids = lexical_index.chunk_ids(chunk.doc_id)
            if chunk.id in ids:
                following = ids[ids.index(chunk.id) + 1 : ids.index(chunk.id) + 1 + MAX_ITEMS]
                chunks += [c for c in self.store.get_chunks(list(following)) if c.doc_sha == chunk.doc_sha]
        sentences = {tuple(s): c for c in chunks for s in c.sentences if s[0] >= best.end}
        units = {tuple(u) for c in chunks for u in c.units}
        items = []
        for span in sorted(sentences):
            if span not in units or len(items) == MAX_ITEMS:
                break
            items.append(Item(span[0], span[1], sentences[span].text_of(*span)))
        return replace(best, items=tuple(items)) if items else best

    def _second_scores(
        self, question: str, chunks: list[Chunk]
    ) -> tuple[np.ndarray | None, float, dict[str, float]]:
        """Each candidate's dense score under the second embedder, (len(chunks),) float, the ms
        its query embedding took, and its cosine similarity to each of their sentences (sentence
        id -> sim). None and {} when there is none, its weight is 0, or a candidate's
        document has no vectors from it (indexed before it was set: `qa ingest` adds them), so one
        question never mixes two scales."""
        s = self.settings
        if self.second is None or s.second_embedding_weight <= 0:
            return None, 0.0, {}
        by_doc = self.store.doc_vectors({c.doc_id: c.doc_sha for c in chunks}, self.second.name)
        if any(c.doc_id not in by_doc for c in chunks):
            return None, 0.0, {}
        t0 = time.perf_counter()
        q = self.second.encode_query(question)
        embed_ms = (time.perf_counter() - t0) * 1000
        chunk_sims, sent_sim = _similarities(chunks, by_doc, q)
        out = np.empty(len(chunks))
        for i, c in enumerate(chunks):
            best = max(
                (sent_sim.get(sentence_id(c.doc_id, a, b, c.doc_sha), 0.0) for a, b in c.sentences),
                default=0.0,
            )
            out[i] = (1 - s.sentence_weight) * chunk_sims[c.id] + s.sentence_weight * best
        return out, embed_ms, sent_sim

    def _evidence(
        self, question, q_tokens, hits, sent_sim, second_sim=None, *, ranker: citerank.Weights | None = None
    ) -> list[Evidence]:
        """Score every sentence of the top chunks: similarity plus lexical overlap plus chunk rank
        (`Evidence.score`, what abstention compares), and rank them for citing (`Evidence.rank`):
        the same with the second embedder's similarity mixed in, the overlap weighted by the
        question words' rarity among these sentences (`_pool_idf`), the sentence read in its
        passage's context (`_context`), and, for a question that asks a number or a time, a
        sentence holding none demoted (qa.answer_checks.fits_question). With a learned `ranker`
        (qa.citerank, fitted for the question's language), the rank is its score instead. Each
        sentence keeps its raw signals (`Evidence.features`, qa.citerank.RAW). Sorted by `score`,
        strongest first."""
        s = self.settings
        q_terms = set(q_tokens) | set(_latin_terms(question))
        second_sim = second_sim or {}
        w2 = s.evidence_second_weight if second_sim else 0.0
        asks = asks_number_or_time(question)
        per_hit = []
        for hit in hits:
            chunk = hit.chunk
            bodies = [chunk.text_of(a, b) for a, b in chunk.sentences]
            terms = [set(qtext.tokens(body)) | set(_latin_terms(body)) for body in bodies]
            sids = [sentence_id(chunk.doc_id, a, b, chunk.doc_sha) for a, b in chunk.sentences]
            per_hit.append((hit, bodies, terms, sids))
        pool = {sid: t for _, _, terms, sids in per_hit for sid, t in zip(sids, terms)}  # overlapping chunks
        idf = _pool_idf(q_terms, list(pool.values()))
        seen, out = set(), []
        for place, (hit, bodies, terms, sids) in enumerate(per_hit):
            chunk = hit.chunk
            sims = [sent_sim.get(sid, 0.0) for sid in sids]
            seconds = [second_sim.get(sid, sim) for sid, sim in zip(sids, sims)]
            plain = [_overlap(q_terms, t, None) for t in terms]
            weighted = [_overlap(q_terms, t, idf) for t in terms]
            misfit = [asks and not fits_question(question, body) for body in bodies]
            ranked_overlap = weighted if s.evidence_overlap_idf else plain
            own = [  # every sentence of the chunk: `_context` reads the neighbours' too
                (1 - w2) * sims[i]
                + w2 * seconds[i]
                + s.evidence_overlap_weight * ranked_overlap[i]
                - s.evidence_type_weight * misfit[i]
                for i in range(len(sids))
            ]
            for i, ((a, b), sid) in enumerate(zip(chunk.sentences, sids)):
                if sid in seen:
                    continue
                seen.add(sid)
                near = [j for j in (i - 1, i + 1) if 0 <= j < len(sids)]
                features = (  # as citerank.RAW
                    sims[i],
                    seconds[i],
                    plain[i],
                    weighted[i],
                    float(misfit[i]),
                    hit.dense,
                    float(place),
                    float(i == 0),
                    max((sims[j] for j in near), default=0.0),
                    max((weighted[j] for j in near), default=0.0),
                    citerank.length_feature(len(terms[i])),
                )
                # Absolute signals only (no min-max): the abstention threshold compares across questions.
                score = sims[i] + s.evidence_overlap_weight * plain[i] + s.evidence_chunk_weight * hit.dense
                rank = (
                    own[i] + s.evidence_chunk_weight * hit.dense + _context(i, bodies, terms, own, q_terms, s)
                )
                out.append(
                    Evidence(
                        chunk.doc_id,
                        chunk.id,
                        chunk.paragraph,
                        a,
                        b,
                        bodies[i],
                        score,
                        sims[i],
                        plain[i],
                        chunk.page,
                        rank,
                        features=features,
                    )
                )
        if ranker is not None and out:
            learned = citerank.scores(citerank.design(np.array([e.features for e in out])), ranker)
            out = [replace(e, rank=float(r)) for e, r in zip(out, learned)]
        out.sort(key=lambda e: e.score, reverse=True)
        return out


@functools.lru_cache(maxsize=4)
def _weights_at(path: str) -> dict:
    try:
        return citerank.load(Path(path))
    except (ValueError, OSError) as exc:
        raise ModelError(f"The learned citation rank at {path} cannot be used ({exc}).") from None


def _learned(s) -> dict:
    """The learned cite-rank models (qa.citerank) from `s.cite_ranker_path`, read once per path.
    Raises `ModelError` when the file is unreadable or fitted on other features."""
    return _weights_at(str(s.cite_ranker_path))


def _overlap(q_terms: set, terms: set, idf: dict[str, float] | None) -> float:
    """The share of the question's words found in a sentence's words, each weighted by `idf` when given.

    Example: _overlap({"a", "b"}, {"a"}, {"a": 3.0, "b": 1.0}) == 0.75
    """
    if not q_terms:
        return 0.0
    if idf is None:
        return len(q_terms & terms) / len(q_terms)
    return sum(idf[t] for t in q_terms & terms) / sum(idf[t] for t in q_terms)


def _pool_idf(q_terms: set, pool: list[set]) -> dict[str, float]:
    """BM25's idf of each question word over the evidence sentences `pool` (the sentences of the
    retrieved passages, nearly always of one article): the article's subject, named in most of its
    sentences, weighs little; the word only the answer's sentence shares with the question, much.

    Example: _pool_idf({"x"}, [{"x"}, set()])["x"] == math.log(1 + 1.5 / 1.5)
    """
    n = len(pool)
    return {t: math.log(1 + (n - (df := sum(t in p for p in pool)) + 0.5) / (df + 0.5)) for t in q_terms}


# A sentence that opens by pointing back at the one before it: «وأشار إلى أنّ…», «وأضاف…», «وقال…»,
# a pronoun («وهو», «وهي») or a connective («كما», «إلا أنّ», «لكنّ»); in English "He/She/It/They
# said…". Its subject (often the question's words) is named in the sentence before.
_BACK_REFERENCE = re.compile(
    r"^\W*(?:و|ف)?(?:أشار|اشار|أشارت|اشارت|أضاف|اضاف|أضافت|اضافت|قال|قالت|أكد|اكد|أكدت|اكدت|أوضح|اوضح"
    r"|أوضحت|اوضحت|تابع|تابعت|لفت|لفتت|نوه|نوهت|أعلن|اعلن|أعلنت|اعلنت|ذكر|ذكرت|اعتبر|اعتبرت"
    r"|هو|هي|هم|هما|كما|لكن|لكنه|لكنها|إلا|الا)(?=\s|$)"
    r"|^\W*(?:He|She|It|They|This|These|Its|His|Her|Their)\b"
)


def back_reference(sentence: str) -> bool:
    """True when `sentence` opens by pointing back at the sentence before it (`_BACK_REFERENCE`).

    Example: back_reference("وأشار إلى أن الاجتماع سيعقد غداً") is True
    """
    return bool(_BACK_REFERENCE.match(sentence))


def _context(i: int, bodies: list[str], terms: list[set], own: list[float], q_terms: set, s) -> float:
    """What sentence `i` of a chunk gains from its neighbours (added to its citation rank):
    `evidence_context_weight` times the better of its neighbours' own scores (`own`: similarity
    and overlap, a sentence-window reading of the sentence), and, when it opens by pointing back
    (`back_reference`), `evidence_backref_weight` times the share of the question's words found only
    in the sentence before it (the subject it points back to)."""
    gain = 0.0
    if s.evidence_context_weight > 0:
        near = [own[j] for j in (i - 1, i + 1) if 0 <= j < len(own)]
        if near:
            gain += s.evidence_context_weight * max(near)
    if s.evidence_backref_weight > 0 and i > 0 and q_terms and back_reference(bodies[i]):
        before = len(q_terms & (terms[i - 1] - terms[i])) / len(q_terms)
        gain += s.evidence_backref_weight * before
    return gain


def _similarities(
    chunks: list[Chunk], kept: dict, q: np.ndarray
) -> tuple[dict[str, float], dict[str, float]]:
    """Cosine similarities to `q` of the candidate chunks and their sentences whose document has
    kept vectors (`qa.store.DocVectors`, doc id -> vectors): (chunk id -> sim, sentence id -> sim).
    One matrix product per document."""
    by_doc = {doc_id: vectors.vectors @ q for doc_id, vectors in kept.items()}
    chunk_sims, sent_sims = {}, {}
    for c in chunks:
        sims = by_doc.get(c.doc_id)
        if sims is None:
            continue
        vectors = kept[c.doc_id]
        chunk_sims[c.id] = float(sims[c.index])
        for a, b in c.sentences:
            row = vectors.row_of(a, b)
            if row is not None:
                sent_sims[sentence_id(c.doc_id, a, b, c.doc_sha)] = float(sims[row])
    return chunk_sims, sent_sims


def _minmax(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; all-equal values become zeros.

    Example: _minmax(np.array([1.0, 3.0])).tolist() == [0.0, 1.0]
    """
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _latin_terms(text: str) -> list[str]:
    """Names and numbers written in Latin script or digits: they cross languages unchanged.

    Example: _latin_terms("Russia-Now.com في 2016") == ["russia", "now", "com", "2016"]
    """
    return [t for t in qtext.tokens(text) if t.isascii() and (len(t) > 2 or t.isdigit())]
