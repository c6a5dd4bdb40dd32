"""The app's start-up and memory: time from `python app.py` to a first cited answer, and resident memory.

Targets (2 cores): ready to answer <= 20 s after start (models already fetched, seed indexed);
resident memory <= 3 GB with both models loaded (after one extractive and one generative answer).
Run: `python -m bench.bench_app`. Writes bench/results/app.json.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import save
from qa.config import PROJECT_DIR as ROOT
from qa.config import SEED_DOCUMENT


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    from gradio_client import Client

    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-app-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "QA_CHROMA_PATH": str(tmp / "chroma"), "QA_PORT": str(port)}
    subprocess.run([sys.executable, "-m", "qa", "ingest", str(SEED_DOCUMENT)], env=env, check=True, cwd=ROOT)

    t0 = time.perf_counter()
    app = subprocess.Popen([sys.executable, "app.py"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    url, ready, answer = f"http://127.0.0.1:{port}/", None, None
    try:
        while time.perf_counter() - t0 < 180:
            try:
                client = Client(url, verbose=False)
                answer = client.predict("What did the Kremlin deny?", api_name="/ask")
                ready = time.perf_counter() - t0
                break
            except Exception:  # not listening yet
                time.sleep(0.25)
        rss_extractive = rss_mb(app.pid)
        t1 = time.perf_counter()
        generated = client.predict("What did the Kremlin deny?", "generative", api_name="/ask")
        generative_s = time.perf_counter() - t1
        rss_both = rss_mb(app.pid)
    finally:
        app.terminate()
        app.wait(timeout=30)
    result = {
        "ready_to_answer_s": round(ready, 1) if ready else None,
        "first_answer_cited": bool(answer and answer["citations"]),
        "rss_mb_embedder_only": round(rss_extractive),
        "rss_mb_both_models": round(rss_both),
        "first_generative_answer_s": round(generative_s, 1),
        "generative_mode": generated.get("mode"),
    }
    path = save("app", result)
    print(result)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
