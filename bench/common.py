"""Helpers shared by the benchmarks: a throwaway assistant, percentiles, result files.

Results: every benchmark `bench/bench_NAME.py` writes `bench/results/NAME.json` through `save`, and
only there (a variant of a run, such as `bench_ingest --dev`, is a section of that file), with the
commit, the CPUs and the load average; latency percentiles carry bootstrap 95% intervals.
"""

from __future__ import annotations

import json
import platform
import socket
import tempfile
import time
from pathlib import Path

from eval import conditions, stats
from eval.metrics import percentile
from qa.assistant import Assistant
from qa.config import PROJECT_DIR, Settings

RESULTS = Path(__file__).resolve().parent / "results"
SEED_SET = PROJECT_DIR / "eval" / "questions" / "seed.jsonl"  # the seed article's question set
DEV = Path(__file__).resolve().parents[2] / "shared" / "eval-data" / "arabic-qa-dev"


def fresh_assistant(chroma_path: Path | None = None, **overrides) -> Assistant:
    """An assistant on an embedded Chroma: a new temporary one, or `chroma_path` to reuse an index."""
    chroma_path = chroma_path or Path(tempfile.mkdtemp(prefix="qa-bench-")) / "chroma"
    return Assistant(Settings(_env_file=None, chroma_path=chroma_path, **overrides))


def start_and_join(threads: list) -> None:
    """Start every thread, then wait for all of them (simulated users, concurrent callers)."""
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (for a benchmark's own server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(values: list[float]) -> dict[str, float]:
    """n, p50/p95 (`eval.metrics.percentile`: statistics.quantiles, inclusive) with their bootstrap
    95% intervals (`p50_ci`, `p95_ci`: eval/stats.py), mean and max, rounded."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "max": None}

    def ci(q: int) -> list[float | None]:
        return [None if x is None else round(x, 1) for x in stats.bootstrap(values, q=q)]

    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p50_ci": ci(50),
        "p95": round(percentile(values, 95), 1),
        "p95_ci": ci(95),
        "mean": round(sum(values) / len(values), 1),
        "max": round(max(values), 1),
    }


def save(name: str, data: dict, *, section: str | None = None) -> Path:
    """Write `bench/results/<name>.json`, with when and where it ran; `name` is the benchmark's
    module name without `bench_` (stripped if given). With `section`, only that part is replaced."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name.removeprefix('bench_')}.json"
    data = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.processor() or platform.machine(),
        # CPUs and load average when the result was saved: a figure from a busy machine says so.
        "machine_state": conditions.machine(),
        **conditions.commit(),
        **data,
    }
    if section is not None:
        whole = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        data = {**whole, section: data}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
