"""Batched decoding (qa.batching): what one decode step costs with 1, 2, 4 and 8 replies in it.

For each K of `--slots` (default 1 2 4 8), a `Batcher` with K slots reads K reader prompts at once
(the reader's instructions and worked examples, then a different window of five sentences of the
seed article and one seed question each, as `qa.reading.read` builds them), with the reader's JSON
grammar and token log-probabilities, up to 48 tokens each. The prefix state is saved first, so
every prompt reads only its own sentences and question. Reported per K: the wall time, replies'
tokens per second, the mean decode step (ms) by how many replies it held, and prompt tokens per
second in the steps that read prompts. `decode_ms_per_token` is a step's time over the replies in
it: what batching saves is the drop of that figure from one reply to K.

Run: `OMP_WAIT_POLICY=PASSIVE python -m bench.bench_batch` (about 3 minutes on an idle machine).
Writes bench/results/batch.json. Leaves out: the rest of a question (retrieval, the second
reading, checks; bench/bench_load.py measures whole questions under load).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import defaultdict

from llama_cpp import LlamaGrammar

from bench.common import SEED_SET, save, start_and_join
from qa import batching, llm, reading
from qa.config import SEED_DOCUMENT, Settings
from qa.text import sentences as sentence_spans

MAX_TOKENS = 48  # a reading's reply is 30-60 tokens


def prompts(k: int, llama) -> list[tuple[list[int], int]]:
    """K reader prompts as (tokens, prefix length)."""
    text = SEED_DOCUMENT.read_text(encoding="utf-8")
    sentences = [text[s.start : s.end] for s in sentence_spans(text) if s.end - s.start > 40]
    questions = [json.loads(line)["question"] for line in SEED_SET.read_text(encoding="utf-8").splitlines()]
    out = []
    for i in range(k):
        window = [sentences[(5 * i + j) % len(sentences)] for j in range(5)]
        block = "\n".join(f"[{n}] {llm.quote(s)}" for n, s in enumerate(window, start=1))
        messages = llm.messages(
            "reader", sentences=block, question=llm.quote(questions[(2 * i) % len(questions)])
        )
        prefix = llm.chatml(messages[:-1], generation_prompt=False)
        whole = prefix + llm.chatml(messages[-1:], generation_prompt=True)
        tokens = llama.tokenize(whole.encode(), add_bos=True, special=True)
        out.append((tokens, len(llama.tokenize(prefix.encode(), add_bos=True, special=True))))
    return out


def run(k: int, llama, grammar: tuple[str, str]) -> dict:
    """K readings at once on a K-slot batcher; the figures of the module docstring."""
    batcher = batching.Batcher(llama, slots=k, n_ctx=llm.N_CTX, n_threads=2)
    steps: dict[int, list[float]] = defaultdict(list)
    prompt_ms, prompt_tokens = [0.0], [0]
    step = batcher._step

    def timed() -> None:  # the batcher's own step, timed by how many replies it decodes
        decoding = sum(1 for j in batcher._active if j.last is not None and not j.pending)
        t0 = time.perf_counter()
        step()
        ms = (time.perf_counter() - t0) * 1000
        reading_ = batcher._batch.batch.n_tokens - decoding  # prompt tokens in this step
        if reading_:
            prompt_ms[0], prompt_tokens[0] = prompt_ms[0] + ms, prompt_tokens[0] + reading_
        else:
            steps[decoding].append(ms)

    batcher._step = timed
    jobs = prompts(k, llama)
    tokens, prefix_len = jobs[0]
    list(batcher.generate(tokens[: prefix_len + 1], prefix_len=prefix_len, max_tokens=1, timeout_s=600))
    generated = [0] * k

    def one(i: int) -> None:
        tokens, prefix_len = jobs[i]
        for _ in batcher.generate(
            tokens,
            prefix_len=prefix_len,
            max_tokens=MAX_TOKENS,
            grammar=grammar,
            logprobs=True,
            timeout_s=600,
        ):
            generated[i] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
    start_and_join(threads)
    wall = time.perf_counter() - t0
    batcher.close()
    return {
        "slots": k,
        "wall_s": round(wall, 2),
        "reply_tokens": sum(generated),
        "reply_tokens_per_s": round(sum(generated) / wall, 2),
        "decode_step_ms": {n: round(sum(v) / len(v), 1) for n, v in sorted(steps.items())},
        "decode_ms_per_token": {n: round(sum(v) / len(v) / n, 1) for n, v in sorted(steps.items()) if n},
        "prompt_tokens_per_s": round(prompt_tokens[0] / prompt_ms[0] * 1000, 1) if prompt_ms[0] else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    llama = llm.local_llama(Settings(_env_file=None))
    compiled = LlamaGrammar.from_json_schema(json.dumps(reading.SCHEMA), verbose=False)
    grammar = (compiled._grammar, compiled._root)
    rows = []
    for k in args.slots:
        row = run(k, llama, grammar)
        rows.append(row)
        print(
            f"K={k}: {row['wall_s']} s, {row['reply_tokens_per_s']} reply tokens/s, ms a token by replies in the"
            f" step {row['decode_ms_per_token']}, prompt {row['prompt_tokens_per_s']} tokens/s",
            flush=True,
        )
    path = save("batch", {"max_tokens": MAX_TOKENS, "runs": rows})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
