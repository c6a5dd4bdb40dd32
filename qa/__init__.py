"""Cited question answering over documents (Arabic first): ingest, retrieve, answer."""
