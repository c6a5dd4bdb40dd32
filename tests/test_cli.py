"""The CLI as a user runs it: real processes, exit codes, one-sentence errors, no tracebacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SEED


def run_qa(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qa", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _assert_clean_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.full
def test_ingest_ask_json_docs_reset(real_env, tmp_path):
    env = real_env
    ingest = run_qa("ingest", str(SEED), env=env)
    assert ingest.returncode == 0, ingest.stderr
    assert f"added     {SEED.name}" in ingest.stdout

    again = run_qa("ingest", str(ROOT / "seeds"), env=env)
    assert f"unchanged {SEED.name}" in again.stdout and "0 chunks written" in again.stdout

    ask = run_qa("ask", "What did the Kremlin deny?", "--json", "--k", "3", env=env)
    assert ask.returncode == 0, ask.stderr
    data = json.loads(ask.stdout)
    text = SEED.read_text(encoding="utf-8").strip()
    assert data["question_lang"] == "en" and not data["abstained"] and data["citations"]
    for c in data["citations"]:
        assert text[c["start"] : c["end"]] == c["quote"]
        assert f"[{c['n']}]" in data["answer"]

    human = run_qa("ask", "ماذا نفى الكرملين؟", env=env)
    assert human.returncode == 0 and "Sources:" in human.stdout and "[1]" in human.stdout

    docs = run_qa("docs", env=env)
    assert SEED.name in docs.stdout
    assert run_qa("reset", env=env).returncode == 0
    assert "Nothing is indexed" in run_qa("docs", env=env).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ask", "   "), "The question is empty"),
        (("ask", "x" * 2001), "the limit is 2000"),
        (("ingest", "missing.txt"), "does not exist"),
        (("remove", "nothing.txt"), "is not indexed"),
    ],
)
def test_bad_input_exits_non_zero_with_one_sentence(env, args, message):
    _assert_clean_error(run_qa(*args, env=env), message)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "is empty"),
        ("blob.txt", b"\x00\xff\x10" * 100, "binary"),
        ("utf16.txt", "مرحبا بالعالم".encode("utf-16"), "UTF-16"),
        ("cp1256.txt", ("مرحبا بالعالم العربي " * 5).encode("windows-1256"), "--encoding windows-1256"),
        ("sheet.xlsx", b"PK\x03\x04", "unsupported file type"),
    ],
)
@pytest.mark.full  # three CLI processes per file kind
def test_bad_files_change_nothing(env, tmp_path, name, data, message):
    assert run_qa("ingest", str(SEED), env=env).returncode == 0
    before = run_qa("docs", env=env).stdout
    path = tmp_path / name
    path.write_bytes(data)
    _assert_clean_error(run_qa("ingest", str(path), env=env), message)
    assert run_qa("docs", env=env).stdout == before


def test_unreachable_chroma_url(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_qa("docs", env={**env, "QA_CHROMA_URL": f"http://127.0.0.1:{port}"})
    _assert_clean_error(result, "Cannot reach the Chroma server")


@pytest.mark.full  # five CLI processes
def test_missing_and_corrupt_model(real_env, tmp_path):
    env = real_env
    models = tmp_path / "models"
    asked = run_qa("ask", "Who is Kyle Orton?", env={**env, "QA_MODELS_DIR": str(models)})
    _assert_clean_error(asked, "run `python -m qa models fetch`")
    ingest = run_qa("ingest", str(SEED), env={**env, "QA_MODELS_DIR": str(models)})
    _assert_clean_error(ingest, "is missing")

    folder = models / "embeddinggemma-300m"
    for rel in ("model.safetensors", "2_Dense/model.safetensors", "3_Dense/model.safetensors"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"not the weights")
    corrupt = run_qa("ingest", str(SEED), env={**env, "QA_MODELS_DIR": str(models)})
    _assert_clean_error(corrupt, "does not match its published sha256")
    verify = run_qa("models", "verify", "embeddinggemma", env={**env, "QA_MODELS_DIR": str(models)})
    _assert_clean_error(verify, "does not match its published sha256")


def test_setting_and_flag_select_the_mode_identically(env):
    assert run_qa("ingest", str(SEED), env=env).returncode == 0
    question = "ماذا نفى الكرملين؟"
    by_flag = run_qa("ask", question, "--json", "--mode", "generative", env=env)
    by_setting = run_qa("ask", question, "--json", env={**env, "QA_ANSWER_MODE": "generative"})
    assert by_flag.returncode == 0 and by_setting.returncode == 0, by_flag.stderr + by_setting.stderr
    flag, setting = json.loads(by_flag.stdout), json.loads(by_setting.stdout)
    assert flag["mode"] == setting["mode"] and flag["mode"].startswith("generative")
    assert (flag["answer"], flag["citations"]) == (setting["answer"], setting["citations"])
    default = json.loads(run_qa("ask", question, "--json", env=env).stdout)
    assert default["mode"] == "extractive"


def test_unknown_mode_is_one_sentence_whether_flag_or_setting(env):
    _assert_clean_error(run_qa("ask", "Who?", "--mode", "poetry", env=env), "Unknown answer mode 'poetry'")
    by_setting = run_qa("ask", "Who?", env={**env, "QA_ANSWER_MODE": "poetry"})
    _assert_clean_error(by_setting, "Unknown answer mode 'poetry'; choose one of: extractive, generative")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [("QA_SHORT_ANSWER", "maybe", "QA_SHORT_ANSWER is invalid"), ("QA_K", "many", "QA_K is invalid")],
)
def test_an_invalid_setting_is_one_sentence(env, variable, value, message):
    _assert_clean_error(run_qa("docs", env={**env, variable: value}), message)


def test_control_characters_alone_are_an_empty_question(env):
    _assert_clean_error(run_qa("ask", "\x01\x02\u200f", env=env), "The question is empty")
