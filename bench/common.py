"""Helpers shared by the benchmarks: a throwaway assistant, percentiles, result files."""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.assistant import Assistant
from qa.config import Settings

RESULTS = Path(__file__).resolve().parent / "results"
DEV = Path(__file__).resolve().parents[2] / "shared" / "eval-data" / "arabic-qa-dev"


def fresh_assistant(chroma_path: Path | None = None, **overrides) -> Assistant:
    """An assistant on an embedded Chroma: a new temporary one, or `chroma_path` to reuse an index."""
    chroma_path = chroma_path or Path(tempfile.mkdtemp(prefix="qa-bench-")) / "chroma"
    return Assistant(Settings(_env_file=None, chroma_path=chroma_path, **overrides))


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p95/mean/max of a list of milliseconds, rounded."""
    arr = np.asarray(values, dtype=float)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "mean": round(float(arr.mean()), 1),
        "max": round(float(arr.max()), 1),
    }


def save(name: str, data: dict) -> Path:
    """Write one benchmark's results as JSON, with when and where it ran."""
    RESULTS.mkdir(exist_ok=True)
    data = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.processor() or platform.machine(),
        **data,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return path
