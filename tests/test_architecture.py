"""The layers stay layered: no import circle inside ``core``, and ``core`` never imports the UI."""

from __future__ import annotations

import ast
import re
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module) -> list[str]:
    """Every module a file imports, wherever: at the top, inside a function (lazy) or under
    ``if TYPE_CHECKING:``. A circle through a lazy or typing-only import is still a knot a
    reader has to untie, so none is allowed."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in CORE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in _imports(ast.parse(path.read_text())) if t in modules}
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return found


def _without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exporting its modules is not a circle of theirs."""
    packages = {p for p in graph if (CORE.parent / p.replace(".", "/") / "__init__.py").exists()}
    return {m: {t for t in ts if t not in packages} for m, ts in graph.items()}


def test_core_has_no_import_circle():
    assert cycles(_without_packages(import_graph())) == []


def test_the_circle_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_never_imports_streamlit_or_the_pages():
    for path in CORE.rglob("*.py"):
        imports = _imports(ast.parse(path.read_text()))
        assert not any(i.split(".")[0] in {"streamlit", "ui", "pages"} for i in imports), path


README = CORE.parent / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:end if end > 0 else None]


def _exists(path: str) -> bool:
    return (CORE.parent / path.rstrip("/")).exists()


def test_the_owner_table_names_modules_that_exist():
    """Every path the README's concept-owner table names is a file or folder of the repo: a
    rename that forgets the table fails here."""
    table = [line for line in _section("Where each concept lives").splitlines()
             if line.startswith("| ") and "---" not in line][1:]
    assert len(table) >= 10
    named = [p for line in table for p in re.findall(r"`([\w./-]+\.py|[\w./-]+/)`", line)]
    assert named and [p for p in named if not _exists(p)] == []


def test_the_architecture_picture_names_modules_that_exist():
    """The picture's modules (``core/llm/ (registry · loader …)``, ``core/system.py``) exist."""
    picture = _section("## Architecture").split("```")[1]
    missing = [p for p in re.findall(r"(?:core|ui|pages)/[\w/]*\.py|ERT\.py", picture)
               if not _exists(p)]
    for package, names in re.findall(r"core/(\w+)/\s+\(?([^()\n]*?)\)?(?=\s{2,}core/|\n|$)",
                                     picture):
        for name in re.findall(r"[a-z_]+", names.replace("one module per backend", "")):
            if not _exists(f"core/{package}/{name}.py"):
                missing.append(f"core/{package}/{name}.py")
    assert missing == []


def test_the_picture_check_finds_a_missing_module(tmp_path):
    assert not _exists("core/evaluation/nowhere.py") and _exists("core/evaluation/worker.py")


MODULE_LINES = 420  # "about 400"


def test_core_modules_stay_short_unless_the_readme_says_why():
    text = _section("## Architecture")
    start = text.index("The long\nones, and why:")
    listed = set(re.findall(r"^- `(core/[\w/]+\.py)`", text[start:], flags=re.M))
    assert listed and all(_exists(p) for p in listed)
    long = {str(p.relative_to(CORE.parent)) for p in CORE.rglob("*.py")
            if len(p.read_text().splitlines()) > MODULE_LINES}
    assert long - listed == set(), "shorten these or say why in the README"
