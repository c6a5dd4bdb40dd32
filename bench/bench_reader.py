"""Benchmark of the short answer: quote latency, the reader's first token and total, memory.

`python -m bench.bench_reader` indexes the seed article in a temporary Chroma and asks the seed
question set's answerable questions (eval/questions/seed.jsonl, English and Arabic, follow-ups
asked alone) through `Assistant.stream`: the quote (the first `Draft`), the short answer (the first
event that carries it, after both readings) and the final answer (with an English reader's
automatic translation, when one is made) are timed separately; the reader's own first token and
total and the second reading's time come from `Answer.timings_ms`. Resident memory is read at the end, with both models loaded. Run it on an
idle machine: another process on the 2 cores slows llama.cpp several times.
Writes bench/results/reader.json. Leaves out: answer quality (`python -m eval run`).
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench.common import SEED_SET, fresh_assistant, percentiles, save
from eval import questions
from qa import llm
from qa.config import SEED_DOCUMENT
from qa.stream import Draft


def main() -> None:
    qs = [q for q in questions.load(SEED_SET).questions if not q.unanswerable and not q.follows]
    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-reader-"))
    try:
        # A fresh translation store: automatic translations are made, not read back from .qa/.
        assistant = fresh_assistant(tmp / "chroma", short_answer="on", translations_path=tmp / "t.sqlite")
        assistant.ingest([SEED_DOCUMENT], progress=False)
        assistant.ask(qs[0].question)  # load both models
        rows = []
        for q in qs:
            t0 = time.perf_counter()
            stream = assistant.stream(q.question)
            quote_ms = short_ms = None
            for event in stream.events():
                if isinstance(event, Draft) and quote_ms is None:
                    quote_ms = (time.perf_counter() - t0) * 1000
                # The short answer is shown as soon as a draft carries it; an automatic translation
                # for an English reader follows it (qa.extractive.readable).
                if isinstance(event, Draft) and event.answer.short_answer is not None and short_ms is None:
                    short_ms = (time.perf_counter() - t0) * 1000
            answer = stream.answer()
            total_ms = (time.perf_counter() - t0) * 1000
            short_ms = short_ms or total_ms
            short = answer.short_answer
            rows.append(
                {
                    "id": q.id,
                    "lang": q.lang,
                    "quote_ms": quote_ms,
                    "short_ms": short_ms,
                    "total_ms": total_ms,
                    "reader_first_token_ms": answer.timings_ms.get("reader_first_token"),
                    "reader_ms": answer.timings_ms.get("reader"),
                    "reader_second_ms": answer.timings_ms.get("reader_second"),
                    "translate_ms": answer.timings_ms.get("translate"),
                    "short": short.text if short else None,
                    "verified": bool(short and short.verified),
                    "abstained": answer.abstained,
                }
            )
            print(f"{q.id:8} quote {quote_ms or 0:6.0f} ms  total {total_ms:6.0f} ms  {rows[-1]['short']}")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {}
    for lang in ("en", "ar"):
        mine = [r for r in rows if r["lang"] == lang]
        summary[lang] = {
            "quote_ms": percentiles([r["quote_ms"] for r in mine if r["quote_ms"] is not None]),
            "short_answer_total_ms": percentiles([r["short_ms"] for r in mine]),
            "with_translation_ms": percentiles([r["total_ms"] for r in mine]),
            "reader_second_ms": percentiles([r["reader_second_ms"] for r in mine if r["reader_second_ms"]]),
            "reader_first_token_ms": percentiles(
                [r["reader_first_token_ms"] for r in mine if r["reader_first_token_ms"] is not None]
            ),
            "verified_short_answers": sum(r["verified"] for r in mine),
            "questions": len(mine),
        }
    batcher = llm.local_batcher(assistant.settings)
    drafts = {"lookup": assistant.settings.llm_lookup}
    if batcher is not None:  # prompt lookup (qa.batching.draft): tokens drafted, and confirmed
        drafts.update(drafted=batcher.drafted, accepted=batcher.accepted)
    path = save("reader", {"summary": summary, "peak_rss_mb": round(rss_mb), "drafts": drafts, "rows": rows})
    for lang, s in summary.items():
        print(
            f"{lang}: quote p50 {s['quote_ms']['p50']} ms; short answer p50 {s['short_answer_total_ms']['p50']} ms,"
            f" reader first token p50 {s['reader_first_token_ms']['p50']} ms;"
            f" verified {s['verified_short_answers']}/{s['questions']}"
        )
    print(f"peak resident memory {rss_mb:.0f} MB; drafts {drafts}; wrote {path}")


if __name__ == "__main__":
    main()
