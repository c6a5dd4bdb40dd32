"""Load: N simulated users asking at once, short answers on, through the served API.

Indexes the seed article in a fresh Chroma (`python -m qa ingest`, a process of its own), starts the
app server (`python app.py`: uvicorn, the API and the page on one loopback port) as a subprocess
and, for each N of `--users` (default 1 5 20), runs N users in threads; each asks its own slice of
the seed questions (eval/questions/seed.jsonl, user u starts at question u × `--questions`) one
after another, in turn through `POST /v1/chat/completions` streamed, not streamed, and `POST
/api/ask`. Per N it reports:
- `errors`: replies that are not HTTP 200 or carry an error event, and client time-outs;
- `quote_ms`: time to the quote, on the two streamed endpoints (streamed chat: its `qa_draft`
  chunk, or its content when no draft comes; `/api/ask` with `"stream": true`: its first line);
- `reply_ms`: time to the final reply (the one with the short answer), every endpoint, and per
  endpoint (`reply_ms_by_endpoint`); p50/p95/max with bootstrap intervals (`bench.common`);
- `questions_per_min`: answered questions over the round's wall time;
- `server_peak_rss_mb`: the server's resident memory, sampled every 0.2 s during the round (and
  `server_vmhwm_mb`, the kernel's peak since the server started);
- `misdelivered`: replies that do not answer their own question: the `qa.question` echoed back is
  not the one asked; or the short answer's span is not inside the reply's own citation `n` (a
  reading of another question's evidence); or the cited spans differ from the ones the same
  question got first (the one-user round, or an earlier reply in the run; a reply whose reader
  timed out is not compared on its spans). `short_answer_differs` counts short answers that differ
  from that first reply's (informational: the reader may word a repeat differently, not a wrong user).
The one-user round always runs first (added when `--users` leaves it out): it is the reference.
Bounded: at most `--questions` per user (default 5) and `--max-s` of wall time per round (default
900 s: no question starts after it), `--timeout-s` per request; the server binds 127.0.0.1 only
(no QA_AUTH). The short answer is forced on (QA_SHORT_ANSWER=on, the default "auto" on a machine
with the local model); `--short-answer off` measures the quote alone.

Run the full measurement on an idle machine (2 cores; about 15 minutes):
    python -m bench.bench_load
A quick check that it works: `python -m bench.bench_load --users 1 2 --questions 2`.
`--parallel K` sets QA_LLM_PARALLEL (default 4; 1: the replies take turns), `--name` the results'
name. Writes bench/results/load.json and plots bench/results/load.png (latency against N).
Leaves out: the page's own Gradio queue (the API only), login (the guard is off on loopback), and
any client beyond this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench.common import RESULTS, SEED_SET, free_port, percentiles, save, start_and_join
from qa.config import PROJECT_DIR, SEED_DOCUMENT

ENDPOINTS = ("chat_stream", "chat", "ask")  # user u's question i goes through ENDPOINTS[(u + i) % 3]
READY_S = 300  # the server's start-up, models loaded and warmed
SAMPLE_S = 0.2  # the memory sampler's period


@dataclass
class Result:
    """One question asked by one user: times in ms from the request's start (None when not reached)."""

    user: int
    qid: str
    question: str
    endpoint: str
    quote_ms: float | None = None
    reply_ms: float | None = None
    error: str | None = None
    echo: str | None = None  # the question the reply says it answers
    spans: list[list] = field(default_factory=list)  # cited (doc, start, end), or the closest ones
    short_answer: str | None = None
    short_in_citation: bool | None = None  # the short answer's span lies in its citation n (None: none)
    timeouts: list[str] = field(default_factory=list)


def proc_mb(pid: int, name: str) -> float:
    """A memory line of /proc/PID/status (`VmRSS` now, `VmHWM` the peak so far), in MB; 0 once gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def seed_questions() -> list[dict]:
    """The seed set's questions: dicts with `id` and `question`, in file order."""
    lines = SEED_SET.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _record(result: Result, qa: dict) -> None:
    result.echo = qa.get("question")
    cited = qa.get("citations") or qa.get("closest") or []
    result.spans = [[c["doc"], c["start"], c["end"]] for c in cited]
    short = qa.get("short_answer")
    if short:
        result.short_answer, src = short["text"], short["source"]
        result.short_in_citation = any(
            c["n"] == src["n"]
            and c["doc"] == src["doc"]
            and c["start"] <= src["start"] <= src["end"] <= c["end"]
            for c in qa.get("citations") or []
        )
    result.timeouts = list(qa.get("timeouts") or [])


def ask_one(client: httpx.Client, result: Result, *, model: str) -> None:
    """Ask `result.question` through `result.endpoint`; fill in its times, reply and error in place."""
    t0 = time.perf_counter()

    def ms() -> float:
        return round((time.perf_counter() - t0) * 1000, 1)

    messages = [{"role": "user", "content": result.question}]
    try:
        if result.endpoint == "ask":
            with client.stream("POST", "/api/ask", json={"question": result.question, "stream": True}) as r:
                if r.status_code != 200:
                    result.error = f"HTTP {r.status_code}"
                    return
                for line in r.iter_lines():
                    if not line:
                        continue
                    event = json.loads(line)
                    if "error" in event:
                        result.error = event["error"].get("message", "error event")
                        return
                    if result.quote_ms is None:  # the draft (the quote), or the answer when there is none
                        result.quote_ms = ms()
                    if "answer" in event:
                        _record(result, event["answer"])
            result.reply_ms = ms()
            if result.echo is None:
                result.error = "the stream ended without its answer"
        elif result.endpoint == "chat":
            r = client.post("/v1/chat/completions", json={"model": model, "messages": messages})
            result.reply_ms = result.quote_ms = ms()
            if r.status_code != 200:
                result.error = f"HTTP {r.status_code}"
                return
            _record(result, r.json()["choices"][0]["message"]["qa"])
        else:
            body = {"model": model, "messages": messages, "stream": True}
            with client.stream("POST", "/v1/chat/completions", json=body) as r:
                if r.status_code != 200:
                    result.error = f"HTTP {r.status_code}"
                    return
                for line in r.iter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    event = json.loads(line.removeprefix("data: "))
                    if "error" in event:
                        result.error = event["error"].get("message", "error event")
                        return
                    choice = event["choices"][0]
                    if ("qa_draft" in choice or choice["delta"].get("content")) and result.quote_ms is None:
                        result.quote_ms = ms()  # the quote: the draft chunk, or the content without one
                    if "qa" in choice:
                        _record(result, choice["qa"])
            result.reply_ms = ms()
            if result.echo is None:
                result.error = "the stream ended without its answer"
    except httpx.HTTPError as exc:
        result.error = f"{type(exc).__name__}: {exc}"


def run_round(
    url: str, users: int, *, questions: list[dict], per_user: int, pid: int, max_s: float, timeout_s: float
) -> tuple[list[Result], float, float]:
    """`users` users at once, each asking its `per_user` questions in sequence.

    Returns (results, the round's wall time in s, the server's peak resident memory in MB sampled
    during the round); no question starts after `max_s` seconds.
    """
    results: list[Result] = []
    lock, stop = threading.Lock(), threading.Event()
    peak = [proc_mb(pid, "VmRSS")]
    t0 = time.perf_counter()

    def sample() -> None:
        while not stop.wait(SAMPLE_S):
            peak[0] = max(peak[0], proc_mb(pid, "VmRSS"))

    def user(u: int) -> None:
        with httpx.Client(base_url=url, timeout=timeout_s) as client:
            for i in range(per_user):
                if time.perf_counter() - t0 > max_s:
                    return
                q = questions[(u * per_user + i) % len(questions)]
                result = Result(u, q["id"], q["question"], ENDPOINTS[(u + i) % len(ENDPOINTS)])
                ask_one(client, result, model="documents")
                with lock:
                    results.append(result)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=user, args=(u,), name=f"user-{u}") for u in range(users)]
    start_and_join(threads)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    return results, wall, max(peak[0], proc_mb(pid, "VmRSS"))


def misdelivery(r: Result, ref: Result | None) -> str | None:
    """Why reply `r` does not answer its own question (None when it does); `ref` is the first reply
    to the same question, if any."""
    if r.echo != r.question:
        return "echo"
    if r.short_in_citation is False:
        return "short answer outside its citation"
    if ref is not None and not (r.timeouts or ref.timeouts) and r.spans != ref.spans:
        return "spans"
    return None


def check_delivery(results: list[Result], reference: dict[str, Result]) -> tuple[list[dict], int]:
    """The replies that answer another question than their own (`misdelivery`), and how many short
    answers differ from the first reply to the same question.

    `reference` (question -> its first reply without a time-out) is read and extended in place.
    """
    wrong, differs = [], 0
    for r in results:
        if r.error:
            continue
        ref = reference.get(r.question)
        if why := misdelivery(r, ref):
            wrong.append({"user": r.user, "qid": r.qid, "endpoint": r.endpoint, "why": why, "echo": r.echo})
        elif ref is None and not r.timeouts:
            reference[r.question] = r
        elif ref is not None and r.short_answer != ref.short_answer:
            differs += 1
    return wrong, differs


def summarise(users: int, results: list[Result], wall_s: float, peak_mb: float, **checks) -> dict:
    """One round's figures (ms, questions per minute, MB)."""
    ok = [r for r in results if not r.error]
    streamed = [r.quote_ms for r in ok if r.endpoint in ("chat_stream", "ask") and r.quote_ms is not None]
    return {
        "users": users,
        "asked": len(results),
        "errors": len(results) - len(ok),
        "error_examples": sorted({r.error for r in results if r.error})[:5],
        "quote_ms": percentiles(streamed),
        "reply_ms": percentiles([r.reply_ms for r in ok]),
        "reply_ms_by_endpoint": {
            e: percentiles([r.reply_ms for r in ok if r.endpoint == e]) for e in ENDPOINTS
        },
        "with_short_answer": sum(r.short_answer is not None for r in ok),
        "reader_timeouts": sum(bool(r.timeouts) for r in ok),
        "wall_s": round(wall_s, 1),
        "questions_per_min": round(len(ok) / wall_s * 60, 2) if wall_s else None,
        "server_peak_rss_mb": round(peak_mb),
        **checks,
    }


def plot(rounds: list[dict], path: Path) -> None:
    """Latency (p50, p95) of the quote and of the final reply against N users, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["users"] for r in rounds]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    lines = (("quote_ms", "the quote (first streamed content)", "C0"), ("reply_ms", "the final reply", "C3"))
    for key, name, color in lines:
        for q, style in (("p50", "-"), ("p95", "--")):
            values = [None if r[key][q] is None else r[key][q] / 1000 for r in rounds]
            ax.plot(n, values, style, color=color, marker="o", label=f"{name} {q}")
    ax.set_xlabel("simulated users at once")
    ax.set_ylabel("seconds")
    ax.set_xticks(n)
    ax.set_title("Latency under load, short answers on (2 cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def start_server(tmp: Path, *, short_answer: str, parallel: int) -> tuple[subprocess.Popen, str]:
    """Index the seed article and start `python app.py` on a free loopback port; (process, URL) once
    it answers. Raises `RuntimeError` if it exits or is not ready within READY_S seconds."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("QA_AUTH", "QA_API_KEYS", "QA_API_KEYS_FILE")}
    env |= {
        "QA_CHROMA_PATH": str(tmp / "chroma"),
        "QA_PORT": str(port),
        "QA_HOST": "127.0.0.1",  # and without QA_AUTH the app binds 127.0.0.1 whatever QA_HOST says
        "QA_SHORT_ANSWER": short_answer,
        "QA_LLM_PARALLEL": str(parallel),
        "QA_FEEDBACK_PATH": str(tmp / "feedback.jsonl"),
        "QA_CONVERSATIONS_PATH": str(tmp / "conversations.sqlite"),
        "QA_TRANSLATIONS_PATH": str(tmp / "translations.sqlite"),
        "QA_OCR_PATH": str(tmp / "ocr"),
    }
    ingest = [sys.executable, "-m", "qa", "ingest", str(SEED_DOCUMENT)]
    subprocess.run(ingest, env=env, cwd=PROJECT_DIR, check=True, capture_output=True)
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "app.py"], env=env, cwd=PROJECT_DIR, stdout=log, stderr=log)
    url, t0 = f"http://127.0.0.1:{port}", time.perf_counter()
    while time.perf_counter() - t0 < READY_S:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}); see {tmp / 'server.log'}")
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"the server was not ready after {READY_S} s; see {tmp / 'server.log'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 5, 20], help="N for each round")
    parser.add_argument("--questions", type=int, default=5, help="questions per user (at most)")
    parser.add_argument("--max-s", type=float, default=900, help="wall-time cap of a round, in s")
    parser.add_argument("--timeout-s", type=float, default=600, help="one request's time cap, in s")
    parser.add_argument("--short-answer", choices=["on", "off"], default="on")
    parser.add_argument("--parallel", type=int, default=4, help="QA_LLM_PARALLEL: replies decoded together")
    parser.add_argument("--name", default="load", help="results name: bench/results/<name>.json and .png")
    args = parser.parse_args()
    rounds_n = sorted({1, *args.users})
    questions = seed_questions()
    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-load-"))
    server, url = start_server(tmp, short_answer=args.short_answer, parallel=args.parallel)
    rounds, reference = [], {}
    try:
        with httpx.Client(base_url=url, timeout=args.timeout_s) as client:  # loads the reader: not counted
            ask_one(client, Result(0, "warm", questions[0]["question"], "ask"), model="documents")
        for n in rounds_n:
            results, wall, peak = run_round(
                url,
                n,
                questions=questions,
                per_user=args.questions,
                pid=server.pid,
                max_s=args.max_s,
                timeout_s=args.timeout_s,
            )
            wrong, differs = check_delivery(results, reference)
            row = summarise(
                n,
                results,
                wall,
                peak,
                misdelivered=len(wrong),
                misdelivered_examples=wrong[:5],
                short_answer_differs=differs,
                server_vmhwm_mb=round(proc_mb(server.pid, "VmHWM")),
            )
            row["per_question"] = [asdict(r) | {"spans": len(r.spans)} for r in results]
            rounds.append(row)
            q, a = row["quote_ms"], row["reply_ms"]
            print(
                f"N={n:3} asked {row['asked']:3} errors {row['errors']} misdelivered {row['misdelivered']}"
                f" | quote p50/p95/max {q['p50']}/{q['p95']}/{q['max']} ms"
                f" | reply p50/p95/max {a['p50']}/{a['p95']}/{a['max']} ms"
                f" | {row['with_short_answer']} short answers, {row['reader_timeouts']} reader time-outs"
                f" | {row['questions_per_min']} q/min | peak RSS {row['server_peak_rss_mb']} MB",
                flush=True,
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    result = {
        "short_answer": args.short_answer,
        "llm_parallel": args.parallel,
        "llm_timeout_s": float(os.environ.get("QA_LLM_TIMEOUT_S", 60)),
        "questions_per_user": args.questions,
        "max_s": args.max_s,
        "endpoints": list(ENDPOINTS),
        "rounds": rounds,
    }
    path = save(args.name, result)
    plot(rounds, RESULTS / f"{args.name}.png")
    print(f"written to {path} and {RESULTS / f'{args.name}.png'}")


if __name__ == "__main__":
    main()
