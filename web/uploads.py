"""Uploaded files into the index: the one path the web page's upload and `POST /api/documents` share.

An upload's identity is its file name: each file is staged at `uploads/<name>` beside the index, so
uploading a changed report.txt replaces the report.txt uploaded before; every file is read and
checked before the index is touched (`Assistant.ingest`), and no upload stays on disk afterwards,
indexed or refused.

Example:
    index_uploads(assistant, [Path("/tmp/x/report.txt")])  # "Added: report.txt."

Leaves out: receiving the bytes (Gradio's upload, FastAPI's `UploadFile`) and showing the result.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from qa.assistant import Assistant
from qa.errors import InputError, QAError

log = logging.getLogger("qa.app")


def index_uploads(
    assistant: Assistant,
    paths: Sequence[Path],
    *,
    ready: Callable[[], None] = lambda: None,
    encoding: str | None = None,
) -> str:
    """Index uploaded files under their own names; returns one sentence saying what changed.

    `paths` are the received files (deleted here, with their folder once empty); `ready` waits for
    the embedding model (the web app's warm-up); `encoding` reads text files in that encoding
    instead of UTF-8 (e.g. windows-1256). Raises `InputError` when two files share a name or a
    file cannot be used (also when a parser fails unexpectedly: the sentence says so, the log has the
    details), `StoreError` for the index: the index is unchanged then.
    """
    staging = assistant.uploads_dir
    staged: list[Path] = []
    try:
        names = set()
        for p in paths:
            if p.name in names:
                raise InputError(f"Two uploaded files share the name {p.name}.")
            names.add(p.name)
        staging.mkdir(parents=True, exist_ok=True)
        for p in paths:
            shutil.copy(p, staging / p.name)
            staged.append(staging / p.name)
        ready()
        report = assistant.ingest(staged, progress=True, encoding=encoding)
    except QAError:
        raise
    except Exception as exc:  # a parser failing on a malformed file: one sentence, the details logged
        log.exception("ingesting %s failed", [p.name for p in paths])
        raise InputError(
            f"Could not index the upload ({type(exc).__name__}); the details are in the server log."
        ) from None
    finally:  # uploads do not linger, ingested or refused: neither our copy nor the received one
        for p in [*staged, *paths]:
            p.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                p.parent.rmdir()  # the upload's own folder (and ours), once empty
    changes = (
        ("Added", report.added),
        ("Replaced", report.replaced),
        ("Already indexed, unchanged", report.unchanged),
        ("Same text as an indexed document, skipped", [Path(s).name for s, _ in report.duplicates]),
    )
    return "; ".join(f"{label}: {', '.join(ids)}" for label, ids in changes if ids) + "."
