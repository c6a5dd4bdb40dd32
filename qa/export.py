"""Build the int8 ONNX EmbeddingGemma from the verified torch weights, offline, at `qa models fetch`.

What is done: the whole sentence-transformers pipeline of EmbeddingGemma-300M (the Gemma3 encoder,
mean pooling, the two dense projections, L2 normalisation) is exported as one ONNX graph by torch's
own exporter (`torch.onnx.export(dynamo=True)`, dynamic batch and sequence length); ONNX Runtime's
MatMulNBits quantiser then turns the encoder's 168 linear layers into int8 weights (symmetric, one
scale per block of 32 weights) run at accuracy level 4 (int8 products, activations quantised per
block, so Gemma's outlier activations keep their own scales). The token-embedding table (262,144 x
768, a Gather, which the MatMul quantiser leaves alone) is stored as float16 and cast back to
float32 after the lookup: it was 805 MB of the 944 MB file and of the process's memory, and float16
rounds a vector by ~1e-3 relative, far below the int8 weights' error. The tokenizer files and
prompts are copied beside the graph, and the result is checked against the torch model before it
is kept.

Measured (bench/results/embedding_backends.json): cosine to the torch vectors >= 0.999 on the dev
benchmark's texts. Left out, measured worse there: ONNX Runtime's per-tensor dynamic int8 (mean cosine
0.964, min 0.900) and per-channel dynamic int8 (min 0.992); optimum and OpenVINO are not needed.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np

from qa.embedder import (
    ONNX_FILE,  # the runtime owns the folder's layout; re-exported for qa.models
    OnnxEmbedder,
)
from qa.errors import ModelError

# Copied from the torch model's folder: the tokenizer, its prompts and the maximum sequence length.
SIDE_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
)
# Bumped when the recipe changes, so `qa models fetch` rebuilds an older build (qa.models).
# 2: the token-embedding table in float16 (805 -> 403 MB of file and of resident memory).
RECIPE = 2
BLOCK_SIZE = 32  # weights per int8 scale; 32 gave cosine >= 0.9985 (bench/results/embedding_backends.json)
# The build is refused when any check sentence's int8 vector is further than this from the torch one.
# Measured minimum cosines: 0.9985 over the 68 seed questions (as queries), 0.9995 over the seed set's
# 27 evidence sentences, 0.9994 over 170 of the dev benchmark's texts (bench/results/embeddings.json,
# "candidates"); this bound leaves room for another CPU's rounding without letting a broken build
# through (per-tensor dynamic int8 gave 0.900). tests/test_embeddings.py holds the model to it too.
MIN_COSINE = 0.995
CHECK_SENTENCES = (
    "وكان الكرملين أعلن أنّ بوتين وكيري لم يبحثا فكرة التّعاون العسكري المباشر ضد الإرهابيّين في سوريا.",
    "ارتفعت أسعار القمح في الأسواق العالمية هذا الأسبوع بسبب الجفاف.",
    "What did the Kremlin deny?",
    "مع من تفاوض لافروف في موسكو؟",
)


def build(base: Path, out: Path, *, threads: int = 2) -> dict:
    """Export and quantise the torch model in `base` into the (new, empty) folder `out`.

    Returns build facts for the stamp (seconds, tool versions, the check's worst cosine). Raises
    `ModelError` when the built model disagrees with the torch one (cosine below `MIN_COSINE`).
    About 2 minutes and 5 GB of memory on 2 cores; needs no network.
    """
    # deferred: the exporters (torch, onnx, sentence-transformers) load only for a build
    import onnx
    import onnxruntime
    import torch
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )
    from sentence_transformers import SentenceTransformer

    # Their optimiser passes and the quantiser log every node at INFO (2,704 lines in a first `make run`).
    for noisy in ("onnxscript", "onnx_ir", "onnxruntime.quantization"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    t0 = time.perf_counter()
    torch.set_num_threads(threads)
    model = SentenceTransformer(str(base), device="cpu").eval()

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            features = self.st({"input_ids": input_ids, "attention_mask": attention_mask})
            return features["sentence_embedding"]

    example = model.tokenizer(list(CHECK_SENTENCES[:2]), padding=True, return_tensors="pt")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    fp32 = out / "fp32.onnx"
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            Pipeline().eval(),
            (example["input_ids"], example["attention_mask"]),
            str(fp32),
            dynamo=True,
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
            external_data=False,
        )
    config = DefaultWeightOnlyQuantConfig(
        block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=4, bits=8, op_types_to_quantize=("MatMul",)
    )
    quantiser = MatMulNBitsQuantizer(
        onnx.load(str(fp32)),
        bits=8,
        block_size=BLOCK_SIZE,
        is_symmetric=True,
        accuracy_level=4,
        algo_config=config,
        op_types_to_quantize=("MatMul",),
    )
    quantiser.process()
    half_gather_tables(quantiser.model.model)
    quantiser.model.save_model_to_file(str(out / ONNX_FILE), use_external_data_format=False)
    fp32.unlink()
    for name in SIDE_FILES:
        shutil.copy2(base / name, out / name)

    # The check: the built model must give (nearly) the torch model's vectors.
    built = OnnxEmbedder(out, name="check", threads=threads)
    worst = 1.0
    for kind in ("document", "query"):
        texts = list(CHECK_SENTENCES)
        ref = model.encode(texts, prompt_name=kind, normalize_embeddings=True, convert_to_numpy=True)
        got = (
            built.encode_documents(texts)
            if kind == "document"
            else np.stack([built.encode_query(t) for t in texts])
        )
        worst = min(worst, float((ref * got).sum(axis=1).min()))
    if worst < MIN_COSINE:
        raise ModelError(
            f"The int8 embedding model built in {out} disagrees with the torch model (cosine {worst:.4f} "
            f"< {MIN_COSINE}); it was not kept."
        )
    return {
        "build_s": round(time.perf_counter() - t0, 1),
        "check_min_cosine": round(worst, 5),
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "quantisation": {"method": "MatMulNBits", "bits": 8, "block_size": BLOCK_SIZE, "accuracy_level": 4},
        "token_embeddings": "float16",
    }


def half_gather_tables(model, *, min_elements: int = 1 << 24) -> list[str]:
    """Store each large float32 table read only by Gather nodes as float16, with a Cast back to
    float32 after every such Gather, in place; returns the tables' names.

    Only tables of at least `min_elements` (16M: the 201M-element token embeddings, not the small
    position or norm weights) are changed. Raises nothing; a graph without such a table is left as is.
    """
    # deferred: onnx loads only for a build
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    changed = []
    for i, init in enumerate(list(graph.initializer)):
        n = int(np.prod(init.dims)) if init.dims else 1
        nodes = readers.get(init.name, [])
        if init.data_type != TensorProto.FLOAT or n < min_elements:
            continue
        if not nodes or any(node.op_type != "Gather" or node.input[0] != init.name for node in nodes):
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name)
        graph.initializer[i].CopyFrom(half)
        for node in nodes:
            looked_up = node.output[0]
            node.output[0] = looked_up + "_float16"
            cast = helper.make_node(
                "Cast", [node.output[0]], [looked_up], to=TensorProto.FLOAT, name=node.name + "_to_float32"
            )
            graph.node.insert(list(graph.node).index(node) + 1, cast)
        changed.append(init.name)
    return changed
