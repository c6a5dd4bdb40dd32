"""The package's layering, checked on every run: no import cycle among the project's modules, and
`qa/` never imports the edges (gradio, FastAPI, `web`, `eval`).

Every import counts, at the top of a file, inside a function or under TYPE_CHECKING: a cycle hidden
in a function still ties the modules together. Read with `ast`, nothing is imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("qa", "web", "eval")
EDGES = ("gradio", "fastapi", "uvicorn", "web", "eval")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imports() -> dict[str, set[str]]:
    """Module -> the names it imports (absolute, as written: `qa.answer`, `gradio`, ...)."""
    out: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            names: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
                    names.update(f"{node.module}.{alias.name}" for alias in node.names)
            out[_module(path)] = names
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_among_the_projects_modules():
    raw = imports()
    graph = {m: {n for n in names if n in raw and n != m} for m, names in raw.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_qa_never_imports_the_edges():
    for module, names in imports().items():
        if module.startswith("qa"):
            bad = sorted(n for n in names if n.split(".")[0] in EDGES)
            assert not bad, f"{module} imports {bad}"


def test_the_stages_keep_the_layers_contract():
    # import-linter reads .importlinter: qa's stages in layers, no edge imported by qa, no
    # evaluation imported by the page. Run as `make lint` runs it, so a break fails CI too.
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_import_inside_a_function_in_qa_but_a_deferred_third_party_one():
    # Imports of qa's own modules sit at a file's top, so a file's top says which stages it uses;
    # only a heavy third-party one may wait for its first use, with a comment saying why
    # (TYPE_CHECKING blocks are annotations, not imports: they are left alone here). The CLI is the
    # one exception: it defers the assistant and the models (LangChain, ~0.5 s) past `qa --help`.
    hidden = []
    for path in sorted((ROOT / "qa").glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                    if any(n and n.split(".")[0] == "qa" for n in names) and path.name != "cli.py":
                        hidden.append(f"{path.name}:{node.lineno}")
    assert hidden == []
