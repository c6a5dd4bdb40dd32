"""Run every benchmark in turn (`make bench`); each writes its own bench/results/NAME.json."""

import subprocess
import sys

BENCHES = [
    "bench_extractive",
    "bench_ingest",
    "bench_retrieval",
    "bench_app",
    "bench_llm",
    "bench_reader",
    "bench_api",
    "bench_scale",
    "bench_load",
]

for name in BENCHES:
    print(f"== {name}", flush=True)
    subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False)
