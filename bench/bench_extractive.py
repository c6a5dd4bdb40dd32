"""Warm extractive answer latency on the seed article: p50/p95 end to end and per stage.

Target (2 cores): p50 <= 150 ms, p95 <= 300 ms. Run: `python -m bench.bench_extractive [--rounds N]`;
settings come from the environment (QA_*), so a change can be timed against the settings before it.
Writes bench/results/extractive.json.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from bench.common import fresh_assistant, percentiles, save
from qa.config import SEED_DOCUMENT

QUESTIONS = [
    "What did the Kremlin deny?",
    "ماذا نفى الكرملين؟",
    "Where would the joint operations room be?",
    "أين ستكون غرفة العمليات المشتركة؟",
    "Who is Kyle Orton?",
    "من هو كايل أورتون؟",
    "What did Lavrov and Kerry agree on?",
    "ما الذي اتفق عليه لافروف وكيري؟",
    "What is the capital of Japan?",
    "What did Zakharova say about the moderate opposition?",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    qa = fresh_assistant(short_answer="off")  # the quote alone: the reader is bench_reader's
    qa.ingest([SEED_DOCUMENT], progress=False)
    for q in QUESTIONS:  # warm: model, catalog, Chroma caches
        qa.ask(q)
    totals, stages = [], defaultdict(list)
    for _ in range(args.rounds):
        for q in QUESTIONS:
            t0 = time.perf_counter()
            answer = qa.ask(q)
            totals.append((time.perf_counter() - t0) * 1000)
            for stage, ms in answer.timings_ms.items():
                stages[stage].append(ms)
    result = {
        "end_to_end_ms": percentiles(totals),
        "stages_ms": {k: percentiles(v) for k, v in stages.items()},
    }
    path = save("extractive", result)
    print(f"end to end: {result['end_to_end_ms']}")
    for stage, row in result["stages_ms"].items():
        print(f"  {stage:9} p50 {row['p50']:7.1f} ms  p95 {row['p95']:7.1f} ms")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
