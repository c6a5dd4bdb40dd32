"""What the HTTP API adds: `/v1/chat/completions` against `qa ask` on the same questions (one run each).

Indexes the seed article in a fresh Chroma, starts the real server (`web.app.launch`: uvicorn, the API
and the page on one loopback port) and asks each question of `bench_extractive.QUESTIONS`:
- `Assistant.ask` in process (what `qa ask` runs once its models are loaded);
- `POST /v1/chat/completions` through the official `openai` client, not streamed, then streamed
  (time to the first chunk, and to the end);
- the `qa ask --json` command itself for the first few questions (a new process each: loading the
  embedding model is most of it).
The short answer is off (`--short-answer` turns it on): the local LLM's seconds would hide the
API's own cost. Run: `python -m bench.bench_api`. Writes bench/results/api.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.bench_extractive import QUESTIONS
from bench.common import free_port, fresh_assistant, percentiles, save
from qa.config import PROJECT_DIR, SEED_DOCUMENT

CLI_QUESTIONS = 3  # `qa ask` processes: each loads the embedding model again


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    import openai

    from web.app import launch

    parser = argparse.ArgumentParser()
    parser.add_argument("--short-answer", action="store_true", help="with the local LLM's short answer")
    args = parser.parse_args()
    qa = fresh_assistant(short_answer="on" if args.short_answer else "off", port=free_port())
    qa.ingest([SEED_DOCUMENT], progress=False)
    demo, url = launch(qa, qa.settings, block=False)
    rows = []
    try:
        demo.warmup.wait()
        client = openai.OpenAI(base_url=url + "v1", api_key="unused", max_retries=0)
        model = qa.settings.collection
        for q in QUESTIONS:  # warm: the same questions once through both ways
            qa.ask(q)
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": q}])
        for q in QUESTIONS:
            t0 = time.perf_counter()
            qa.ask(q)
            ask_ms = _ms(t0)
            t0 = time.perf_counter()
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": q}])
            chat_ms = _ms(t0)
            t0 = time.perf_counter()
            first = None
            for _ in client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": q}], stream=True
            ):
                first = first if first is not None else _ms(t0)
            rows.append(
                {
                    "question": q,
                    "ask_ms": ask_ms,
                    "chat_ms": chat_ms,
                    "stream_first_ms": first,
                    "stream_ms": _ms(t0),
                }
            )
    finally:
        demo.close()
    env = {
        **os.environ,
        "QA_CHROMA_PATH": str(qa.settings.chroma_path),
        "QA_SHORT_ANSWER": qa.settings.short_answer,
    }
    cli = []
    for q in QUESTIONS[:CLI_QUESTIONS]:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "qa", "ask", q, "--json"],
            env=env,
            cwd=PROJECT_DIR,
            check=True,
            capture_output=True,
        )
        cli.append(_ms(t0))
    result = {
        "questions": len(rows),
        "short_answer": qa.settings.short_answer,
        "assistant_ask_ms": percentiles([r["ask_ms"] for r in rows]),
        "chat_completions_ms": percentiles([r["chat_ms"] for r in rows]),
        "chat_completions_stream_first_chunk_ms": percentiles([r["stream_first_ms"] for r in rows]),
        "chat_completions_stream_ms": percentiles([r["stream_ms"] for r in rows]),
        "qa_ask_process_ms": percentiles(cli),
        "per_question": [{k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()} for r in rows],
    }
    path = save("api", result)
    for key in (
        "assistant_ask_ms",
        "chat_completions_ms",
        "chat_completions_stream_first_chunk_ms",
        "chat_completions_stream_ms",
        "qa_ask_process_ms",
    ):
        print(f"{key:40} p50 {result[key]['p50']:8.1f} ms  (n={result[key]['n']})")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
