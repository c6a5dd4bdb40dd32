"""The runner: index a question set's documents into a fresh collection, ask every question, score it.

Our pipeline is asked through `qa.assistant.Assistant` (its retriever and answer modes), one
retrieval per question: the top 10 passages are kept for hit@k and MRR, and the answer is made
from the top `k` of that same retrieval (identical to what `Assistant.ask` would return, without
embedding the question twice). Baselines (`naive`, `bm25`) answer the same questions on the same
documents with the same embedder. Follow-ups are asked after the question they follow, with the
earlier turns as history. Writes results*.jsonl, metrics.json, report.md/html and the plots.
Leaves out: metric definitions (metrics.py), rendering (report.py), comparing runs (compare.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import resource
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval import conditions, metrics, selective
from eval.questions import Question, QuestionSet
from qa import answer as qanswer
from qa import confidence as qconfidence
from qa import ingest as qingest
from qa import plugins
from qa.embeddings import Embedder
from qa.errors import InputError, QAError

K_RETRIEVE = 10  # passages kept per question for hit@k, MRR and the recall@k curves


class QueryMemo(Embedder):
    """Our embedder, remembering question vectors so the baselines reuse the pipeline's."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_tokens = inner.max_tokens
        self._queries: dict[str, np.ndarray] = {}

    def encode_documents(self, texts, *, progress=False):
        return self.inner.encode_documents(texts, progress=progress)

    def encode_query(self, text):
        if text not in self._queries:
            self._queries[text] = self.inner.encode_query(text)
        return self._queries[text]

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


@dataclass
class Context:
    """An indexed collection ready for questions: the assistant, document texts, baselines."""

    assistant: object
    texts: dict[str, str]
    docs: list[Path]
    ingest_s: float
    baselines: dict = field(default_factory=dict)


@contextmanager
def prepared(
    qs: QuestionSet,
    *,
    docs: list[Path],
    out: Path,
    settings_overrides: dict | None = None,
    index_dir: Path | None = None,
    embedder: Embedder | None = None,
    baselines: tuple[str, ...] = (),
    progress: bool = True,
):
    """Index the set's documents (and `docs`) into a fresh collection; removed afterwards unless `index_dir`."""
    from qa.assistant import Assistant
    from qa.config import Settings

    out.mkdir(parents=True, exist_ok=True)
    paths = list(docs) + list(qs.doc_paths)
    if qs.doc_texts:
        folder = out / "docs"
        folder.mkdir(exist_ok=True)
        for doc_id, text in qs.doc_texts.items():
            (folder / doc_id).write_text(text, encoding="utf-8")
            paths.append(folder / doc_id)
    files = qingest.expand_paths(paths)
    if not files:
        raise InputError("No documents to index: pass --docs PATH (the question set brings none).")
    temp = index_dir is None
    index = Path(tempfile.mkdtemp(prefix="qa-eval-")) if temp else Path(index_dir)
    try:
        try:
            settings = Settings(
                **{
                    # No metric scores the automatic translations for English readers (qa.extractive.readable):
                    # off unless asked for (--set auto_translate=true), so a run does not wait on them.
                    "auto_translate": False,
                    **(settings_overrides or {}),
                    "chroma_path": index,
                    "chroma_url": None,
                    "collection": "eval",
                }
            )
        except ValueError as exc:
            raise InputError(f"Invalid --set value: {exc.errors()[0]['msg']}.") from None
        assistant = Assistant(settings)
        assistant.embedder = QueryMemo(embedder or assistant.embedder)
        t0 = time.perf_counter()
        assistant.ingest(files, progress=progress)
        ingest_s = time.perf_counter() - t0
        texts = {d.id: d.text for d in (qingest.read_document(f, max_mb=settings.max_file_mb) for f in files)}
        ctx = Context(assistant, texts, files, ingest_s)
        if baselines:
            from eval import baselines as bl

            passages = bl.split(texts)
            for name in baselines:
                if name == "naive":
                    ctx.baselines[name] = bl.NaiveRAG(
                        passages,
                        texts,
                        embedder=assistant.embedder,
                        client=assistant.store.client,
                        collection="eval_naive",
                    )
                elif name == "bm25":
                    ctx.baselines[name] = bl.BM25Baseline(passages, texts)
                else:
                    raise InputError(f"Unknown baseline {name!r}; choose from: {', '.join(bl.NAMES)}.")
        yield ctx
    finally:
        if temp:
            shutil.rmtree(index, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The journal: a run that resumes where it stopped

JOURNAL = "journal.jsonl"


class Journal:
    """`OUT/journal.jsonl`: the run's configuration on the first line, then one record a line, appended
    and flushed as each question is answered, so a run stopped by anything (a closed laptop, the end of
    a session, Ctrl-C) resumes where it stopped when started again with the same arguments.

    `done[system][question id]` holds the records already made; records that failed with an error are
    not kept as done (a question cut by a backend failure is asked again). A journal of another
    configuration (other questions, mode, k, settings or held-out) is refused with one sentence
    (`InputError`) unless `fresh`, which starts it anew. A line cut by the stop itself (the last one,
    not valid JSON) is dropped.
    """

    def __init__(self, path: Path, config: dict, *, fresh: bool = False) -> None:
        self.path, self.config = Path(path), config
        self.done: dict[str, dict[str, dict]] = {}
        lines = [] if fresh or not self.path.exists() else self.path.read_text(encoding="utf-8").splitlines()
        if lines:
            try:
                head = json.loads(lines[0]).get("journal")
            except json.JSONDecodeError:
                head = None
            if head != config:
                raise InputError(
                    f"{self.path.parent} holds a run of another configuration or of other code (qa/, prompts/); pass --fresh to start it "
                    "anew, or choose another --out."
                )
            for line in lines[1:]:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line being written when the run stopped
                if rec.get("error") is None:
                    self.done.setdefault(rec["system"], {})[rec["id"]] = rec
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8") as f:  # rewritten clean: cut and failed lines dropped
            f.write(json.dumps({"journal": config}, ensure_ascii=False) + "\n")
            for recs in self.done.values():
                for rec in recs.values():
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._file = self.path.open("a", encoding="utf-8")

    @property
    def resumed(self) -> int:
        """How many of our pipeline's records were taken from an earlier sitting."""
        return len(self.done.get("ours", {}))

    def append(self, rec: dict) -> None:
        self._file.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------------------------------------
# Asking


def ask_ours(assistant, question: str, *, k: int, mode: str, history: list[tuple[str, str]]):
    """Answer like `Assistant.ask`, from one retrieval of the top `K_RETRIEVE` passages.

    Returns the `Answer`, the retrieved spans (doc, start, end), the best evidence score the
    abstention decision used, the question's coverage by the first passage (`Retrieval.coverage`,
    None for questions without it), and `qa.confidence.retrieval_signals(trimmed)`, what the
    abstention score reads (eval/abstention.py fits its adjustment from them).
    """
    request = assistant.request(question, k=max(k, K_RETRIEVE), mode=mode, history=history)
    # Through the assistant, so follow-ups are resolved against `history` as in the app.
    retrieval = assistant.retrieve(request)
    alternative_chunks = {e.chunk_id for e in retrieval.alternatives}
    top = retrieval.hits[:k] + tuple(h for h in retrieval.hits[k:] if h.chunk.id in alternative_chunks)
    kept = {h.chunk.id for h in top}
    # Evidence is scored per chunk, so cutting to the top k chunks gives exactly what a k-retrieval gives.
    trimmed = dataclasses.replace(
        retrieval, hits=top, evidence=tuple(e for e in retrieval.evidence if e.chunk_id in kept)
    )
    # The chain's "total" counts this retrieval's own time (`retrieve` ms) plus the answer step.
    result = assistant.answer_retrieval(trimmed, question=question, mode=mode, k=k, history=history)
    spans = [(h.chunk.doc_id, h.chunk.start, h.chunk.end) for h in retrieval.hits]
    best = trimmed.evidence[0].score if trimmed.evidence else None
    return result, spans, best, retrieval.coverage, qconfidence.retrieval_signals(trimmed)


def gold_spans(q: Question, texts: dict[str, str]) -> tuple[list[metrics.Span], list[str]]:
    """The question's gold spans in the indexed texts, and the gold strings that were not found."""
    spans, missing = [], []
    for doc, start, needle in q.spans:
        span = metrics.resolve_span(texts.get(doc, ""), doc, needle, near=start)
        if span:
            spans.append(span)
        else:
            missing.append(needle)
    for needle in q.evidence:
        where = [q.doc] if q.doc in texts else list(texts)
        span = next((s for d in where if (s := metrics.resolve_span(texts[d], d, needle))), None)
        if span:
            spans.append(span)
        else:
            missing.append(needle)
    return spans, missing


def score(q: Question, answer: dict, retrieved: list, gold: list, texts: dict[str, str]) -> dict:
    """Every per-question score of one answer (None where a metric does not apply)."""
    s: dict = {}
    cited = [(c["doc"], c["start"], c["end"]) for c in answer["citations"]]
    if q.unanswerable:
        s.update(metrics.retrieval_scores([], []))
        s.update(metrics.citation_scores([], []))
        s["abstain_unanswerable"] = float(answer["abstained"])
        s["false_abstention"] = None
        s["answered_unanswerable_cited"] = float(not answer["abstained"] and bool(cited))
        short = answer.get("short_answer")
        if short and short["verified"] and not answer["abstained"]:
            s["checked_wrong"] = 1.0  # a checked short answer to a question the documents cannot answer
            if short.get("checked"):
                s["certified_wrong"] = 1.0
    else:
        s.update(metrics.retrieval_scores(retrieved, gold))
        s.update(metrics.citation_scores(cited, gold))
        s["abstain_unanswerable"] = None
        s["false_abstention"] = float(answer["abstained"])
        if q.answers:
            s.update(metrics.score_answer(answer["answer"], list(q.answers), abstained=answer["abstained"]))
            if "short_answer" in answer:  # our pipeline (baselines have no short answer)
                s.update(
                    metrics.score_short_answer(
                        answer["short_answer"], list(q.answers), lang=q.lang, abstained=answer["abstained"]
                    )
                )
    checked = answer["citations"] + answer.get("closest", [])
    s["citations_checked"] = len(checked)
    s["quote_mismatches"] = metrics.quote_mismatches(checked, texts)
    return s


def _record(q: Question, system: str, gold: list, missing: list[str]) -> dict:
    return {
        "id": q.id,
        "system": system,
        "question": q.question,
        "lang": q.lang,
        "categories": q.categories,
        "follows": q.follows,
        "unanswerable": q.unanswerable,
        "gold_answers": list(q.answers),
        "gold_evidence": list(q.evidence),
        "gold_spans": [list(s) for s in gold],
        "gold_not_found": missing,
        "doc": q.doc,  # the question's article: the unit the bootstrap resamples (eval/stats.py)
        "source": q.extra.get("source"),
        "extra": q.extra,
    }


def chains(questions: list[Question]) -> list[list[Question]]:
    """Questions grouped by conversation: each follow-up after the question it follows."""
    by_id = {q.id: q for q in questions}

    def root_and_depth(q: Question) -> tuple[str, int]:
        depth, seen = 0, {q.id}
        while q.follows and q.follows in by_id and q.follows not in seen:
            q = by_id[q.follows]
            seen.add(q.id)
            depth += 1
        return q.id, depth

    groups: dict[str, list[tuple[int, int, Question]]] = {}
    for i, q in enumerate(questions):
        root, depth = root_and_depth(q)
        groups.setdefault(root, []).append((depth, i, q))
    return [[q for _, _, q in sorted(g, key=lambda t: t[:2])] for g in groups.values()]


def ask_all(
    ctx: Context,
    questions: list[Question],
    *,
    mode: str,
    k: int,
    workers: int = 1,
    progress: bool = True,
    journal: Journal | None = None,
) -> dict[str, list[dict]]:
    """Ask every question of every system; records per system, in question order.

    With a `journal`, a record already in it is taken from it instead of being asked again, and each
    new one is appended to it as soon as it is made (so a stopped run resumes where it stopped).
    """
    from tqdm import tqdm

    systems = ["ours", *ctx.baselines]
    done: dict[str, dict[str, dict]] = {s: {} for s in systems}
    wanted = {q.id for q in questions}
    if journal is not None:
        for system in systems:
            done[system] = {i: rec for i, rec in journal.done.get(system, {}).items() if i in wanted}
    golds = {q.id: gold_spans(q, ctx.texts) for q in questions}
    already = sum(all(q.id in done[s] for s in systems) for q in questions)
    bar = tqdm(
        total=len(questions),
        initial=already,
        desc=f"asking ({'+'.join(systems)})",
        unit="q",
        disable=not progress,
    )
    lock = threading.Lock()

    def run_chain(chain: list[Question]) -> None:
        by_id = {q.id: q for q in chain}
        for q in chain:
            if all(q.id in done[s] for s in systems):
                continue  # answered before the run was stopped
            gold, missing = golds[q.id]
            for system in systems:
                if q.id in done[system]:
                    continue
                rec = _record(q, system, gold, missing)
                history = _history(q, by_id, done[system])
                rec["history"] = [list(turn) for turn in history]
                coverage, rsignals = None, None
                try:
                    if system == "ours":
                        ans, retrieved, best, coverage, rsignals = ask_ours(
                            ctx.assistant, q.question, k=k, mode=mode, history=history
                        )
                        answer = ans.to_dict()
                    else:
                        answer, passages = ctx.baselines[system].answer(
                            q.question, k=k, k_retrieve=K_RETRIEVE
                        )
                        retrieved = [(p.doc, p.start, p.end) for p in passages]
                        best = passages[0].score if passages else None
                except QAError as exc:
                    rec.update(answer=None, retrieved=[], best_score=None, scores={}, error=str(exc))
                else:
                    rec.update(
                        answer=answer,
                        retrieved=[list(s) for s in retrieved],
                        best_score=best,
                        coverage=coverage,
                        retrieval_signals=rsignals,
                        scores=score(q, answer, retrieved, gold, ctx.texts),
                        error=None,
                    )
                with lock:
                    done[system][q.id] = rec
                    if journal is not None:
                        journal.append(rec)
            with lock:
                bar.update(1)

    groups = chains(questions)
    if workers > 1:
        # The embedder serialises model calls behind its lock; threads still overlap Chroma and I/O.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run_chain, groups))
    else:
        for chain in groups:
            run_chain(chain)
    bar.close()
    return {s: [done[s][q.id] for q in questions] for s in systems}


def ask_held_out(
    ctx: Context,
    questions: list[Question],
    *,
    mode: str,
    k: int,
    progress: bool = True,
    journal: Journal | None = None,
) -> dict[str, list[dict]]:
    """Ask each document's questions with that document removed from the index, then index it again
    (a document whose questions are all in `journal` already is not removed at all)."""
    by_doc: dict[str, list[Question]] = {}
    for q in questions:
        by_doc.setdefault(q.doc, []).append(q)
    paths = {p.name: p for p in ctx.docs}
    done: dict[str, dict] = {}
    answered = journal.done.get("ours", {}) if journal is not None else {}
    for doc, group in by_doc.items():
        if doc not in paths:
            raise InputError(f"Question {group[0].id} names document {doc}, which is not indexed.")
        if all(q.id in answered for q in group):
            done.update({q.id: answered[q.id] for q in group})
            continue
        ctx.assistant.remove(doc)
        try:
            for rec in ask_all(ctx, group, mode=mode, k=k, progress=progress, journal=journal)["ours"]:
                done[rec["id"]] = rec
        finally:
            ctx.assistant.ingest([paths[doc]], progress=False)
    return {"ours": [done[q.id] for q in questions]}


def _history(q: Question, by_id: dict[str, Question], done: dict[str, dict]) -> list[tuple[str, str]]:
    """Earlier turns of the conversation, oldest first, as (question, answer text)."""
    turns, parent = [], q.follows
    while parent and parent in by_id:
        rec = done.get(parent)
        answer = (rec.get("answer") or {}).get("answer", "") if rec else ""
        turns.append((by_id[parent].question, answer))
        parent = by_id[parent].follows
    return turns[::-1]


# ---------------------------------------------------------------------------------------------
# The run command


def run(
    qs: QuestionSet,
    *,
    docs: list[Path] = (),
    out: Path,
    mode: str = "extractive",
    k: int | None = None,
    limit: int | None = None,
    workers: int = 1,
    baselines: tuple[str, ...] = (),
    settings_overrides: dict | None = None,
    index_dir: Path | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
    report: bool = True,
    sample: int | None = None,
    held_out: bool = False,
    fresh: bool = False,
    part: str | None = None,
    articles: tuple[int, int] | None = None,
) -> dict:
    """Run a question set end to end and write everything to `out`; returns metrics.json's content.

    `held_out`: every question becomes unanswerable and is asked with its own document removed
    from the index (removed before its questions, indexed again after), measuring abstention on
    questions that are near the remaining documents but not answered by them.
    Every answer is journalled in `out` as it is made (`Journal`): started again with the same
    arguments, the run asks only what it had not answered; `fresh` discards the journal.
    `part`: only that calibration part of the set ("fit", "certify" or "all", `QuestionSet.part`),
    article by article in a fixed random order, so a run stopped part way is a sample of articles;
    `articles` (start, end): only that batch of articles in that order, and only their files indexed.
    Raises `InputError` when `out` holds a journal of another configuration.
    """
    if part:
        qs = qs.part(part, articles)
    qs = qs.limit(limit).sample(sample)
    if held_out:
        if baselines:
            raise InputError("--held-out runs our pipeline only; drop --baseline.")
        qs = qs.held_out()
    out = Path(out)
    code = conditions.commit()  # the code the run starts with, not whatever HEAD is when it ends
    meter = conditions.Meter()
    with prepared(
        qs,
        docs=list(docs),
        out=out,
        settings_overrides=settings_overrides,
        index_dir=index_dir,
        embedder=embedder,
        baselines=baselines,
        progress=progress,
    ) as ctx:
        assistant = ctx.assistant
        mode = plugins.get_mode(mode).name  # an unknown mode fails before any question is asked
        k = k or assistant.settings.k
        journal = Journal(
            out / JOURNAL,
            {
                "code": conditions.code_fingerprint(),
                "questions": qs.name,
                "ids": hashlib.sha256("\n".join(q.id for q in qs.questions).encode()).hexdigest()[:16],
                "mode": mode,
                "k": k,
                "held_out": held_out,
                "baselines": list(baselines),
                "overrides": {key: str(v) for key, v in sorted((settings_overrides or {}).items())},
            },
            fresh=fresh,
        )
        if journal.resumed and progress:
            print(
                f"resuming: {journal.resumed} of {len(qs.questions)} questions already answered",
                file=sys.stderr,
            )
        t0 = time.perf_counter()
        try:
            if held_out:
                records = ask_held_out(ctx, qs.questions, mode=mode, k=k, progress=progress, journal=journal)
            else:
                records = ask_all(
                    ctx, qs.questions, mode=mode, k=k, workers=workers, progress=progress, journal=journal
                )
        finally:
            journal.close()
        ask_s = time.perf_counter() - t0
        s = assistant.settings
        config = {
            "questions": qs.name,
            "n_questions": len(qs.questions),
            "documents": sorted(ctx.texts),
            "mode": mode,
            "k": k,
            "k_retrieve": K_RETRIEVE,
            "workers": workers,
            "sample": sample,
            "held_out": held_out,
            "baselines": list(baselines),
            "settings": {
                "embedding_model": s.embedding_model,
                "second_embedding_model": s.second_embedding_model,
                "second_embedding_weight": s.second_embedding_weight,
                "chunk_tokens": s.chunk_tokens,
                "lexical_weight": s.lexical_weight,
                "sentence_weight": s.sentence_weight,
                "max_evidence": s.max_evidence,
                "abstain_threshold": s.abstain_threshold,
                "abstain_threshold_ar": s.abstain_threshold_ar,
                "answer_language": s.answer_language,
            },
            "overrides": settings_overrides or {},
            "all_settings": conditions.settings_record(s),
            "models": conditions.models_record(s),
            "commit": code["commit"],
            "dirty": code["dirty"],
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "ingest_s": round(ctx.ingest_s, 2),
            "ask_s": round(ask_s, 2),
            "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        texts = ctx.texts
    config["machine"] = meter.stop()
    ours = records.get("ours", [])
    timed = [r["id"] for r in ours if (r.get("answer") or {}).get("timeouts")]
    result = {
        "warnings": conditions.warnings(ours, config["machine"], timeout_s=s.llm_timeout_s),
        "timeouts": {"cap_s": s.llm_timeout_s, "answers": len(timed), "ids": timed},
        "run": config,
        "problems": qs.problems,
        "definitions": metrics.DEFINITIONS,
        "systems": {system: metrics.summarise(recs) for system, recs in records.items()},
        "selective": selective.summarise(ours),
    }
    for system, recs in records.items():
        name = "results.jsonl" if system == "ours" else f"results-{system}.jsonl"
        with (out / name).open("w", encoding="utf-8") as f:
            for rec in recs:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    (out / "metrics.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    if report:
        from eval import report as rep

        rep.write(out, result, records, texts=texts)
    return result


def calibrate(
    qs: QuestionSet,
    *,
    docs: list[Path] = (),
    out: Path,
    k: int | None = None,
    limit: int | None = None,
    settings_overrides: dict | None = None,
    index_dir: Path | None = None,
    embedder: Embedder | None = None,
    progress: bool = True,
) -> dict:
    """Pick the abstention threshold that maximises balanced accuracy on the set; writes calibration.*"""
    from tqdm import tqdm

    qs = qs.limit(limit)
    kinds = {q.unanswerable for q in qs.questions}
    if kinds != {True, False}:
        raise InputError("Calibration needs both answerable and unanswerable questions in the set.")
    out = Path(out)
    with prepared(
        qs,
        docs=list(docs),
        out=out,
        settings_overrides=settings_overrides,
        index_dir=index_dir,
        embedder=embedder,
        progress=progress,
    ) as ctx:
        s = ctx.assistant.settings
        rows = []
        for q in tqdm(qs.questions, desc="retrieving", unit="q", disable=not progress):
            retrieval = ctx.assistant.retriever.retrieve(q.question, k=k or s.k)
            best = retrieval.evidence[0].score if retrieval.evidence else 0.0
            rows.append({"id": q.id, "lang": q.lang, "unanswerable": q.unanswerable, "score": best})
        current = s.abstain_threshold
        # Arabic questions score higher on Arabic text than English ones: one threshold per language.
        by_language = {}
        for lang in sorted({r["lang"] for r in rows}):
            ans = [r["score"] for r in rows if r["lang"] == lang and not r["unanswerable"]]
            una = [r["score"] for r in rows if r["lang"] == lang and r["unanswerable"]]
            if ans and una:
                now = qanswer.threshold_for(lang, s)
                fit = metrics.best_threshold(ans, una)
                by_language[lang] = {
                    "threshold": round(fit["threshold"], 4),
                    "balanced_accuracy": fit["balanced_accuracy"],
                    "current_threshold": now,
                    "current_balanced_accuracy": metrics.balanced_accuracy(now, ans, una),
                    "abstains_unanswerable": f"{sum(x < fit['threshold'] for x in una)}/{len(una)}",
                    "answers_answerable": f"{sum(x >= fit['threshold'] for x in ans)}/{len(ans)}",
                }
    answerable = [r["score"] for r in rows if not r["unanswerable"]]
    unanswerable = [r["score"] for r in rows if r["unanswerable"]]
    best = metrics.best_threshold(answerable, unanswerable)
    result = {
        "by_language": by_language,
        "threshold": round(best["threshold"], 4),
        "balanced_accuracy": best["balanced_accuracy"],
        "current_threshold": current,
        "current_balanced_accuracy": metrics.balanced_accuracy(current, answerable, unanswerable),
        "abstains_unanswerable": sum(x < best["threshold"] for x in unanswerable),
        "answers_answerable": sum(x >= best["threshold"] for x in answerable),
        "n_unanswerable": len(unanswerable),
        "n_answerable": len(answerable),
        "questions": qs.name,
        "scores": rows,
    }
    (out / "calibration.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    from eval import report as rep

    rep.calibration_plot(out / "calibration.png", answerable, unanswerable, best, current)
    return result


def warn(problems: list[str]) -> None:
    """Print loading problems on stderr, one per line."""
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
