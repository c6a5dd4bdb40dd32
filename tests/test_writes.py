"""Documents stay whole (issue 10): one identity per file, writes that survive kill -9, several processes
on one index, a damaged index, invisible questions. All with the `hash` embedder (plumbing, not quality).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.assistant import Assistant
from tests.conftest import ROOT
from tests.test_cli import _assert_clean_error, run_qa

# Durability across real processes (kill -9, a second writer, damaged files): seconds per test,
# so in the full lane only (`make test`), not the fast one.
pytestmark = pytest.mark.full

OLD = (
    "تفتح الحديقة أبوابها في الثامنة صباحاً. يبلغ سعر التذكرة خمسة دنانير.\n\n"
    "تضم الحديقة بحيرة صغيرة. وفيها ملعب للأطفال.\n\n"
    "أنشأت البلدية الحديقة عام ٢٠١٠. وتبلغ مساحتها عشرة دونمات."
)
NEW = (
    "تفتح الحديقة أبوابها في العاشرة صباحاً. أصبح الدخول مجانياً للأطفال.\n\n"
    "تضم الحديقة بحيرة صغيرة ونافورة. وفيها ملعب جديد للأطفال.\n\n"
    "أنشأت البلدية الحديقة عام ٢٠١٠. ووسعتها عام ٢٠٢٠ إلى خمسة عشر دونماً."
)


# -- identity -------------------------------------------------------------------------------------


def test_same_name_in_two_folders_and_same_text_twice(env, tmp_path):
    docs = tmp_path / "docs"
    (docs / "a").mkdir(parents=True)
    (docs / "b").mkdir()
    (docs / "a" / "report.txt").write_text("تقرير الحديقة: افتتحت الحديقة في الربيع.", encoding="utf-8")
    (docs / "b" / "report.txt").write_text("تقرير المدرسة: بنيت المدرسة عام ١٩٩٠.", encoding="utf-8")
    (docs / "copy.txt").write_text("تقرير الحديقة: افتتحت الحديقة في الربيع.", encoding="utf-8")

    ingested = run_qa("ingest", str(docs), env=env)
    assert ingested.returncode == 0, ingested.stderr
    assert "added     report.txt" in ingested.stdout
    assert "added     b/report.txt" in ingested.stdout
    assert f"duplicate {docs / 'copy.txt'} (same text as report.txt" in ingested.stdout

    listed = run_qa("docs", env=env).stdout.splitlines()
    assert [line.split("\t")[0] for line in listed] == ["b/report.txt", "report.txt"]
    assert str(docs / "b" / "report.txt") in listed[0]

    asked = json.loads(run_qa("ask", "متى بنيت المدرسة؟", "--json", env=env).stdout)
    assert asked["citations"][0]["doc"] == "b/report.txt"
    assert "المدرسة" in asked["citations"][0]["quote"]

    # ingested again one at a time, each file keeps its identity and replaces nothing
    again = run_qa("ingest", str(docs / "b" / "report.txt"), env=env)
    assert "unchanged b/report.txt" in again.stdout

    removed = run_qa("remove", str(docs / "b" / "report.txt"), env=env)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert run_qa("remove", "report.txt", env=env).returncode == 0
    assert "Nothing is indexed" in run_qa("docs", env=env).stdout


def test_docs_reads_the_documents_record_not_the_chunks(fast_seeded, monkeypatch):
    store = fast_seeded.store

    def no_scan(*args, **kwargs):
        raise AssertionError("documents() must not scan the chunks")

    monkeypatch.setattr(store.chunks, "get", no_scan)
    [info] = fast_seeded.documents()
    assert info.chunks >= 5 and info.sha256 and Path(info.source).is_file()
    assert store.records.path.name == "qa-documents.sqlite3"


# -- writes that survive kill -9 -----------------------------------------------------------------

# Runs `qa ingest PATH` with every write call to Chroma and the documents record counted; SIGKILLs
# itself just before write call number LIMIT (or just after it, with "after"). Batches of 2 records
# make a re-ingest many calls long.
CRASH = r"""
import os, signal, sys
from chromadb.api.models.Collection import Collection
from qa import records, store

limit, when, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
calls = [0]

def counted(cls, name):
    original = getattr(cls, name)
    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == limit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls[0] == limit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(cls, name, call)

for name in ("upsert", "delete", "add"):
    counted(Collection, name)
counted(records.Records, "put")
store.Store._batch_size = lambda self: 2
from qa.cli import main

code = main(["ingest", path])
print("CALLS", calls[0])
sys.exit(code)
"""


def _crash(env: dict, limit: int, when: str, path: Path) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", CRASH, str(limit), when, str(path)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _visible_version(settings) -> tuple[str, set[str]]:
    """The one visible version of note.txt: its text, judged from what readers see; checks consistency."""
    assistant = Assistant(settings)
    [info] = assistant.documents()
    chunks = [c for c in assistant.store.all_chunks() if c.doc_id == info.id]
    assert len(chunks) == info.chunks > 0  # never missing, never doubled
    assert {c.doc_sha for c in chunks} == {info.sha256}
    texts = {c.text for c in chunks}
    answer = assistant.ask("متى تفتح الحديقة أبوابها؟")
    assert not answer.abstained and answer.citations[0].doc == info.id
    return info.sha256, texts


def test_kill_9_anywhere_in_a_rewrite_leaves_one_whole_version(env, fast_settings, tmp_path):
    note = tmp_path / "docs" / "note.txt"
    note.parent.mkdir()
    note.write_text(OLD, encoding="utf-8")
    base = tmp_path / "base"
    assert run_qa("ingest", str(note), env={**env, "QA_CHROMA_PATH": str(base)}).returncode == 0
    old_sha, old_texts = _visible_version(fast_settings.model_copy(update={"chroma_path": base}))
    note.write_text(NEW, encoding="utf-8")

    # How many write calls a whole re-ingest makes (no kill: the limit is never reached).
    probe = tmp_path / "probe"
    shutil.copytree(base, probe)
    full = _crash({**env, "QA_CHROMA_PATH": str(probe)}, 10_000, "before", note)
    assert full.returncode == 0, full.stderr
    total = int(full.stdout.split("CALLS")[1])
    assert total >= 6
    new_sha, new_texts = _visible_version(fast_settings.model_copy(update={"chroma_path": probe}))
    assert new_sha != old_sha and new_texts != old_texts

    seen = set()
    for limit in range(1, total + 1):
        for when in ("before", "after"):
            index = tmp_path / f"kill-{limit}-{when}"
            shutil.copytree(base, index)
            killed = _crash({**env, "QA_CHROMA_PATH": str(index)}, limit, when, note)
            assert killed.returncode == -9, (limit, when, killed.stderr[-500:])
            settings = fast_settings.model_copy(update={"chroma_path": index})
            sha, texts = _visible_version(settings)
            assert (sha, texts) in ((old_sha, old_texts), (new_sha, new_texts)), (limit, when)
            seen.add(sha)
            # the next ingest finishes the job and sweeps what the killed one left
            finisher = Assistant(settings)
            finisher.ingest([note], progress=False)
            store = finisher.store
            assert _visible_version(settings)[0] == new_sha
            assert store.chunks.count() == store.count()
            assert {m["doc_sha"] for m in store.sentences.get(include=["metadatas"])["metadatas"]} == {
                new_sha
            }
    assert seen == {old_sha, new_sha}


def test_a_new_file_killed_mid_write_is_absent_and_its_leftovers_swept(env, fast_settings, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text(OLD, encoding="utf-8")
    index = fast_settings.chroma_path
    killed = _crash({**env, "QA_CHROMA_PATH": str(index)}, 2, "after", note)  # after 2 sentence batches
    assert killed.returncode == -9, killed.stderr[-500:]
    reader = Assistant(fast_settings)
    assert reader.documents() == [] and reader.store.all_chunks() == []
    assert reader.store.sentences.count() > 0  # the leftovers of the killed write: invisible
    assert reader.ask("متى تفتح الحديقة أبوابها؟").abstained
    reader.ingest([note], progress=False)
    [info] = reader.documents()
    spans = {s for c in reader.store.all_chunks() for s in c.sentences}
    assert reader.store.sentences.count() == len(spans) and reader.store.chunks.count() == info.chunks


# -- two processes on one index ------------------------------------------------------------------


def test_a_reader_notices_another_process_writing(env, fast_settings, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "garden.txt").write_text(OLD, encoding="utf-8")
    (docs / "school.txt").write_text("بنيت المدرسة الجديدة عام ألفين وعشرة في حي النخيل.", encoding="utf-8")
    cli_env = {**env, "QA_CHROMA_PATH": str(fast_settings.chroma_path)}

    reader = Assistant(fast_settings)  # the app's process
    reader.ingest([docs / "garden.txt"], progress=False)
    assert reader.ask("متى تفتح الحديقة أبوابها؟").citations[0].doc == "garden.txt"

    assert run_qa("ingest", str(docs / "school.txt"), env=cli_env).returncode == 0
    answer = reader.ask("متى بنيت المدرسة الجديدة في حي النخيل؟")
    assert not answer.abstained and answer.citations[0].doc == "school.txt"
    assert [d.id for d in reader.documents()] == ["garden.txt", "school.txt"]

    assert run_qa("remove", "garden.txt", env=cli_env).returncode == 0
    for _ in range(3):  # no "Error finding id", and the removed document is never cited
        answer = reader.ask("متى تفتح الحديقة أبوابها؟")
        assert all(c.doc != "garden.txt" for c in answer.citations + answer.closest)
    assert [d.id for d in reader.documents()] == ["school.txt"]


# -- a damaged index -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "damage"),
    [("chroma.sqlite3", "zero"), ("chroma.sqlite3", "truncate"), ("qa-documents.sqlite3", "zero")],
)
def test_damaged_index_is_one_sentence_and_reset_moves_it_aside(env, tmp_path, file, damage):
    from tests.conftest import SEED

    chroma = Path(env["QA_CHROMA_PATH"])
    assert run_qa("ingest", str(SEED), env=env).returncode == 0
    target = chroma / file
    size = target.stat().st_size
    if damage == "zero":
        target.write_bytes(b"\x00" * size)
    else:
        target.write_bytes(target.read_bytes()[: size // 3])

    for args in (("docs",), ("ask", "ماذا نفى الكرملين؟"), ("ingest", str(SEED)), ("remove", SEED.name)):
        result = run_qa(*args, env=env)
        _assert_clean_error(result, "run `python -m qa reset`")
        assert "damaged" in result.stderr

    reset = run_qa("reset", env=env)
    assert reset.returncode == 0, reset.stderr
    assert "The damaged index was moved to" in reset.stdout and "The index is empty." in reset.stdout
    [aside] = [p for p in chroma.parent.iterdir() if p.name.startswith("chroma.damaged-")]
    assert (aside / file).exists()  # kept, never deleted silently
    assert "Nothing is indexed" in run_qa("docs", env=env).stdout
    assert run_qa("ingest", str(SEED), env=env).returncode == 0


# -- invisible questions ---------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["\u200f", "\u200b\u200b", " \u200c\u200d\ufeff ", "\u200e\u2067\u2069"])
def test_invisible_question_is_empty_without_loading_a_model(real_env, tmp_path, question):
    # The real embedder with no models: any model load would fail with "models fetch".
    result = run_qa("ask", question, env={**real_env, "QA_MODELS_DIR": str(tmp_path / "none")})
    _assert_clean_error(result, "The question is empty")
