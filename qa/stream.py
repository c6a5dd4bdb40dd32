"""The answer stream: one object per question that yields text as it is made and ends with the `Answer`.

Modelled on simonw/llm's `Response`: iterate it for text deltas, call `.answer()` (or `.text()`)
to finish. A UI that wants more reads `.events()`: `Delta` (a piece of draft text from a
generating model) and `Draft` (an answer that may be shown now and that a later one replaces,
e.g. the quote before its short answer is ready). The final `Answer` is the only thing that may
be displayed as fact; streamed and non-streamed asks run the same code and give the same answer.

Example:
    stream = assistant.stream("What did the Kremlin deny?")
    for delta in stream: print(delta, end="")
    stream.answer().citations[0].quote

Leaves out: how events are made (the modes, through `qa.chain`).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TypeVar

from qa.types import Answer, Delta, Event
from qa.types import Draft as Draft  # re-exported: the events of a stream, named as qa.stream's
from qa.types import Request as Request

T = TypeVar("T")


def deltas(text: Generator[str, None, T]) -> Generator[Delta, None, T]:
    """Re-yield a generator's text pieces as `Delta` events and return its value.

    Example: `generation = yield from deltas(llm.stream_text(model, prompt, settings))`
    """
    while True:
        try:
            piece = next(text)
        except StopIteration as stop:
            return stop.value
        yield Delta(piece)


class AnswerStream:
    """Iterate for text deltas; `.events()` for deltas and drafts; `.answer()` for the final `Answer`.

    Consumes its source once: iterating again after the end yields nothing, and `.answer()` is
    always available after the source is drained.
    """

    def __init__(self, source: Iterator[Event | Answer]) -> None:
        self._source = source
        self._answer: Answer | None = None

    def events(self) -> Iterator[Event]:
        """Deltas and drafts as they come; the final `Answer` is kept for `.answer()`."""
        for item in self._source:
            if isinstance(item, Answer):
                self._answer = item
            else:
                yield item

    def __iter__(self) -> Iterator[str]:
        for event in self.events():
            if isinstance(event, Delta):
                yield event.text

    def answer(self) -> Answer:
        """Drain the stream and return the final `Answer`."""
        for _ in self.events():
            pass
        if self._answer is None:  # a mode that returned nothing: a programming error, not user input
            raise RuntimeError("the answer stream ended without an Answer")
        return self._answer

    def text(self) -> str:
        """The final answer's text (with `[n]` markers)."""
        return self.answer().answer
