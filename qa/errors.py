"""The error hierarchy: every failure a user can cause or meet is a `QAError` with one clear sentence.

Only the edges (the CLI, the web UI, the evaluation runner) turn these into messages; the pipeline
raises them and never prints. Leaves out: programming errors, which stay ordinary exceptions.
"""


class QAError(Exception):
    """Base class: the message is one sentence a user can act on."""


class InputError(QAError):
    """A question or a document that cannot be used (empty, too long, binary, unsupported)."""


class ModelError(QAError):
    """A model that is missing, corrupt (hash mismatch) or cannot be loaded."""


class StoreError(QAError):
    """The index cannot be used: unreachable Chroma server, or indexed with another embedding model."""


class LLMError(QAError):
    """A language-model backend that is not configured, not reachable, or failed to answer."""


class LLMTimeout(LLMError):
    """A reply cut at the time cap (`Settings.llm_timeout_s`): the machine was busy or the reply long.

    Kept apart from other failures so that a note, a result and an evaluation can say "time-out"
    instead of "the reply could not be used".
    """
