"""The registry: answer modes, LLM backends and embedders, declared once and looked up by name.

Modelled on simonw/llm's `plugins.py`: `load_plugins()` runs once per process; it registers the
defaults (the `extractive` mode in qa.extractive, the LLM backends in qa.llm, the `generative`
mode in qa.generative, the embedders in qa.embeddings) and then the modules named in `QA_PLUGINS`
(comma-separated, e.g. `tests.fakes`) and any installed package's `qa.plugins` entry point.
Settings, CLI, UI and evaluation all resolve a name through `get_mode()`, `get_backend()` and
`get_embedder()`; nothing patches the assistant. Registering loads no model: a factory runs only
when its name is first used.

Example:
    plugins.get_mode("extractive").label == "Extractive: quotes the documents verbatim"

Leaves out: pluggy's hook machinery. Three kinds of named factories need only three dictionaries,
and a plugin module registers with one call per entry (see `tests/fakes.py`).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from qa.config import Settings, get_settings
from qa.embedder import Embedder
from qa.errors import InputError, LLMError
from qa.retrieve import Retrieval, Retriever
from qa.types import Answer, Event, Request


class Services(Protocol):
    """What an answer mode may use besides the retrieval: the assistant's settings and models."""

    settings: Settings

    @property
    def embedder(self) -> Embedder: ...

    @property
    def retriever(self) -> Retriever: ...

    def chat_model(self, *, max_tokens: int | None = None) -> BaseChatModel: ...


# A mode is a generator: it yields events (text deltas, drafts that may be shown now) and returns
# the final `Answer`. `qa.stream.AnswerStream` is the only consumer of these events.
ModeRun = Callable[["Retrieval", "Request", Services], Generator["Event", None, "Answer"]]


@dataclass(frozen=True)
class Mode:
    """An answer mode: `run` turns a retrieval into events and a final `Answer`.

    `uses_llm`: follow-ups may be condensed by the LLM before retrieval.
    """

    name: str
    label: str
    run: ModeRun
    uses_llm: bool = False


@dataclass(frozen=True)
class Backend:
    """An LLM backend: `make(settings, max_tokens)` returns a LangChain chat model or raises `LLMError`.

    `where(settings)` names it in error messages ("the local LLM", "the openai LLM backend at …");
    `json_options(schema)` gives the options of its `stream` call that constrain a reply to a JSON
    schema (none: the reply is parsed and validated anyway). `token_logprobs`: its `stream` called
    with `logprobs=True` puts each token's log-probability (`qa.llm.TokenLogprob`) in the last
    chunk's `response_metadata["token_logprobs"]` (None there when a server returned none: the
    `openai` backend's `qa.llm.ServerChat`).
    """

    name: str
    make: Callable[[Settings, int], BaseChatModel]
    where: Callable[[Settings], str]
    json_options: Callable[[dict], dict] = lambda schema: {}
    token_logprobs: bool = False


@dataclass(frozen=True)
class EmbedderFactory:
    """An embedder: `load(models_dir, threads, batch_size)` returns an `Embedder`.

    `qa.embeddings.load_embedder` calls it once per process per arguments.
    """

    name: str
    load: Callable[[Path, int, int], Embedder]
    uses_torch: bool = True  # torch's thread count is set before `load` runs


_MODES: dict[str, Mode] = {}
_BACKENDS: dict[str, Backend] = {}
_EMBEDDERS: dict[str, EmbedderFactory] = {}
_LOCK = threading.RLock()
_loaded: set[str] = set()

DEFAULT_MODULES = ("qa.extractive", "qa.llm", "qa.generative", "qa.embeddings")


def register_mode(mode: Mode) -> Mode:
    """Add (or replace) an answer mode by its name."""
    _MODES[mode.name] = mode
    return mode


def register_backend(backend: Backend) -> Backend:
    """Add (or replace) an LLM backend by its name."""
    _BACKENDS[backend.name] = backend
    return backend


def register_embedder(factory: EmbedderFactory) -> EmbedderFactory:
    """Add (or replace) an embedder by its name."""
    _EMBEDDERS[factory.name] = factory
    return factory


def load_plugins() -> None:
    """Import the default modules, `QA_PLUGINS` and `qa.plugins` entry points, once per process.

    Each module registers its entries at import time (or in a `register()` function it exposes).
    Raises `InputError` when a module named in `QA_PLUGINS` cannot be imported.
    """
    extra = tuple(m.strip() for m in get_settings().plugins.split(",") if m.strip())
    with _LOCK:
        for name in (*DEFAULT_MODULES, *extra):
            if name in _loaded:
                continue
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                if name in DEFAULT_MODULES:
                    raise
                raise InputError(
                    f"The plugin module {name!r} in QA_PLUGINS cannot be imported ({exc})."
                ) from exc
            _loaded.add(name)
            register: Any = getattr(module, "register", None)
            if callable(register):
                register()
        if "entry-points" not in _loaded:
            _loaded.add("entry-points")
            for ep in entry_points(group="qa.plugins"):
                ep.load()


def modes() -> dict[str, Mode]:
    """Every registered answer mode, by name, in registration order."""
    load_plugins()
    return dict(_MODES)


def get_mode(name: str) -> Mode:
    """The mode called `name`, or an `InputError` that lists the choices."""
    load_plugins()
    if name not in _MODES:
        raise InputError(f"Unknown answer mode {name!r}; choose one of: {', '.join(_MODES)}.")
    return _MODES[name]


def backends() -> dict[str, Backend]:
    """Every registered LLM backend, by name."""
    load_plugins()
    return dict(_BACKENDS)


def get_backend(name: str) -> Backend:
    """The backend called `name`, or an `LLMError` that lists the choices."""
    load_plugins()
    if name not in _BACKENDS:
        raise LLMError(f"Unknown LLM backend {name!r}; use one of: {', '.join(_BACKENDS)}.")
    return _BACKENDS[name]


def get_embedder(name: str) -> EmbedderFactory | None:
    """The registered embedder called `name`; None means a sentence-transformers name or path."""
    load_plugins()
    return _EMBEDDERS.get(name)
