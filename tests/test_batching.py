"""Batched decoding of the local model (qa.batching) against the model's own context, the oracle.

Real model throughout: the verified Qwen2.5-Coder-1.5B GGUF, loaded once per session. Each test
makes its own `Batcher` (its own llama.cpp context over the shared weights).
"""

from __future__ import annotations

import json
import threading

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from qa import batching, llm
from qa.config import Settings
from qa.errors import LLMError

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["city", "n"],
}
COUNT = "Count from 1 to 200, separated by commas."  # a reply longer than any cap below
WORDS = ("apple", "river", "candle", "tiger", "window", "garden")


@pytest.fixture(scope="module")
def llama():
    return llm.local_llama(Settings(_env_file=None))


@pytest.fixture
def make(llama):
    """Batchers over the session's model, closed after the test."""
    made = []

    def factory(**options):
        made.append(batching.Batcher(llama, n_threads=2, **options))
        return made[-1]

    yield factory
    for batcher in made:
        batcher.close()


def _ask(question: str) -> list:
    return [SystemMessage("Answer in JSON."), HumanMessage(question)]


def _tokens(llama, question: str) -> list[int]:
    prompt = llm.chatml([HumanMessage(question)], generation_prompt=True)
    return llama.tokenize(prompt.encode(), add_bos=True, special=True)


def _run(batcher, tokens, **options) -> tuple[bytes, str, list]:
    steps, pieces = batcher.generate(tokens, **options), []
    while True:
        try:
            pieces.append(next(steps))
        except StopIteration as end:
            return b"".join(s.piece for s in pieces), end.value, pieces


def test_a_reply_decoded_alone_is_the_reply_of_the_models_own_context(llama, make):
    """Same prompt, grammar and greedy choice: the same JSON and the same token log-probabilities."""
    settings = Settings(_env_file=None, llm_timeout_s=600)
    messages = _ask("What is the capital of France, and how many letters does its name have?")
    options = {"response_format": {"type": "json_object", "schema": SCHEMA}, "logprobs": True}
    alone = llm.LlamaCppChat(llama=llama, max_tokens=40)
    batched = llm.LlamaCppChat(llama=llama, max_tokens=40, batcher=make(slots=2, n_ctx=1024))
    want = llm.generate(alone, messages, settings, max_tokens=40, **options)
    for _ in range(2):  # the second time from the saved prefix state
        got = llm.generate(batched, messages, settings, max_tokens=40, **options)
        assert got.text == want.text and got.finish == want.finish == "stop"
        assert "Paris" in got.text
        assert [t.piece for t in got.tokens] == [t.piece for t in want.tokens]
        assert [t.logprob for t in got.tokens] == pytest.approx([t.logprob for t in want.tokens], abs=1e-3)


def test_replies_decoded_together_reach_their_own_callers(llama, make):
    """Six callers at once on four slots: each gets the reply to its own prompt, and the batches did
    hold several replies at a time."""
    batcher = make(slots=4, n_ctx=512)
    replies: dict[str, bytes] = {}

    def ask(word: str) -> None:
        prompt = llm.chatml(
            [
                SystemMessage("You repeat words."),
                HumanMessage(f"Reply with exactly this word and nothing else: {word}"),
            ],
            generation_prompt=True,
        )
        tokens = llama.tokenize(prompt.encode(), add_bos=True, special=True)
        replies[word] = _run(batcher, tokens, prefix_len=0, max_tokens=8, timeout_s=600)[0]

    threads = [threading.Thread(target=ask, args=(w,)) for w in WORDS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert set(replies) == set(WORDS)
    for word, reply in replies.items():
        text = reply.decode().lower()
        assert word in text, (word, text)
        assert not any(other in text for other in WORDS if other != word), (word, text)
    assert batcher.peak_sequences >= 2


def test_a_reply_that_cannot_start_in_time_is_dropped_unstarted(llama, make):
    """One slot, busy with a long reply: a second reply whose time cap ends before the slot frees is
    given up with "time" and nothing generated, and the long reply still finishes."""
    batcher = make(slots=1, n_ctx=512)
    long_prompt = _tokens(llama, COUNT)
    first: list = []
    worker = threading.Thread(
        target=lambda: first.append(_run(batcher, long_prompt, prefix_len=0, max_tokens=120, timeout_s=600))
    )
    worker.start()
    while not batcher.peak_sequences:
        threading.Event().wait(0.05)
    _, finish, pieces = _run(batcher, long_prompt, prefix_len=0, max_tokens=120, timeout_s=0.5)
    assert finish == "time" and not pieces
    worker.join(timeout=600)
    assert first and first[0][1] == "length" and len(first[0][2]) == 120


def test_a_closed_reply_frees_its_slot(llama, make):
    """A caller that stops reading (its time cap) cancels its reply: the one slot serves the next."""
    batcher = make(slots=1, n_ctx=512)
    prompt = _tokens(llama, COUNT)
    steps = batcher.generate(prompt, prefix_len=0, max_tokens=200, timeout_s=600)
    next(steps), next(steps)
    steps.close()
    done: list = []
    worker = threading.Thread(
        target=lambda: done.append(_run(batcher, prompt, prefix_len=0, max_tokens=5, timeout_s=600))
    )
    worker.start()
    worker.join(timeout=300)
    assert done and done[0][1] == "length" and len(done[0][2]) == 5


def test_a_prompt_longer_than_a_slot_is_refused_in_one_sentence(llama, make):
    batcher = make(slots=1, n_ctx=64)
    with pytest.raises(LLMError, match=r"does not fit the local LLM's context of 64"):
        _run(batcher, [1] * 100, prefix_len=0, max_tokens=5, timeout_s=60)


def test_a_reply_whose_grammar_fails_gets_one_sentence_and_the_next_is_served(llama, make):
    batcher = make(slots=1, n_ctx=512)
    prompt = _tokens(llama, COUNT)
    with pytest.raises(LLMError, match=r"could not compile the reply's grammar"):
        _run(batcher, prompt, prefix_len=0, max_tokens=5, grammar=("root ::= [", "root"), timeout_s=60)
    _, finish, pieces = _run(batcher, prompt, prefix_len=0, max_tokens=5, timeout_s=60)
    assert finish == "length" and len(pieces) == 5


def test_prompt_lookup_drafts_change_nothing_but_the_number_of_steps(llama, make):
    """The oracle: with prompt lookup (`lookup`) a reply that copies from its prompt is the reply
    decoded token by token, the same tokens and log-probabilities, the grammar kept; and drafts were
    made and confirmed, so fewer decode steps ran."""
    sentence = (
        "The Kremlin said on Friday that Putin and Kerry did not discuss military cooperation in Syria."
    )
    question = f'Copy this sentence exactly, in JSON as {{"city": the sentence, "n": 1}}: {sentence}'
    tokens = _tokens(llama, question)
    from llama_cpp import LlamaGrammar

    grammar = LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False)
    options = {"prefix_len": 0, "max_tokens": 60, "timeout_s": 600, "logprobs": True}
    options["grammar"] = (grammar._grammar, grammar._root)
    plain, drafting = make(slots=2, n_ctx=512), make(slots=2, n_ctx=512, lookup=8)
    want, want_finish, want_steps = _run(plain, tokens, **options)
    got, got_finish, got_steps = _run(drafting, tokens, **options)
    assert sentence.encode() in want
    assert (got, got_finish) == (want, want_finish)
    # A drafted token's logits come from a batch of several rows, whose kernels round differently
    # from a one-row step: 0.028 at most on this reply (measured; up to ~0.1 on a reader's longer
    # reply), as with several replies decoded at once.
    assert [s.logprob for s in got_steps] == pytest.approx([s.logprob for s in want_steps], abs=0.05)
    assert plain.drafted == 0 and drafting.accepted >= len(want_steps) // 2, (
        drafting.drafted,
        drafting.accepted,
    )


def test_draft_follows_the_latest_earlier_occurrence_of_the_longest_tail():
    """Prompt lookup's draft (a pure function): the last 3 tokens looked up before the last 2, the
    latest earlier occurrence, at most `limit` tokens, none when the tail occurs nowhere earlier."""
    # The tail (7, 8, 9) occurs at 0 and at 4; the latest one is followed by 5, 6.
    assert batching.draft([7, 8, 9, 1, 7, 8, 9, 5, 6, 2, 8, 9, 3, 7, 8, 9], 4) == [5, 6, 2, 8]
    # (4, 8, 9) occurs nowhere earlier: the 2-token tail (8, 9) does, latest at 10.
    assert batching.draft([7, 8, 9, 1, 7, 8, 9, 5, 6, 2, 8, 9, 3, 4, 8, 9], 2) == [3, 4]
    assert batching.draft([1, 2, 3, 4, 5], 8) == []
    assert batching.draft([1, 2, 9, 1, 2], 1) == [9]
