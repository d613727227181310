"""The rooms every service has (issue 15, `docs/architecture.md`), checked from the source.

`python -m tests.architecture.rooms services/registry` prints what a service still lacks; the tests in
`tests/architecture/test_rooms.py` assert it for every service listed in `ROOMED` there.

The rules:
- the layout: `__main__.py`, `app.py`, `settings.py`, `domain/`, `usecases.py` or `usecases/`, `adapters/`,
  `api/` (with `deps.py`, `schemas.py`, `errors.py`), and `consumers.py` holding every subscriber of the service;
- no module over 500 lines, no function over 60 lines;
- `domain/` imports no framework and no driver; `usecases` import no web framework and no database driver;
- no import inside a function (it hides circles), and no import circle between the project's modules.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE_MAX_LINES = 500
FUNCTION_MAX_LINES = 60
FRAMEWORKS = ("fastapi", "starlette", "pymongo", "bson", "aiokafka", "faststream", "httpx", "opentelemetry")
WEB_AND_DRIVERS = ("fastapi", "starlette", "pymongo", "aiokafka", "faststream", "httpx")
SUBSCRIBER_MARKS = (".subscriber(", "Consumer(", "subscribe(")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}"


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _modules(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layout(service: Path) -> list[Finding]:
    """The rooms of one service folder."""
    found: list[Finding] = []

    def need(rel: str, *alternatives: str) -> None:
        if not any((service / name).exists() for name in (rel, *alternatives)):
            found.append(Finding(_rel(service), 0, f"missing room {' or '.join((rel, *alternatives))}"))

    for room in ("__main__.py", "app.py", "settings.py", "domain/__init__.py", "adapters/__init__.py"):
        need(room)
    need("usecases.py", "usecases/__init__.py")
    for room in ("api/__init__.py", "api/deps.py", "api/schemas.py", "api/errors.py"):
        need(room)
    for path in _modules(service):
        if path.name == "consumers.py":
            continue
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if any(mark in line for mark in SUBSCRIBER_MARKS) and not line.lstrip().startswith("#"):
                found.append(Finding(_rel(path), number, "a subscriber outside consumers.py"))
    return found


def sizes(folder: Path) -> list[Finding]:
    """Modules over 500 lines, functions over 60."""
    found: list[Finding] = []
    for path in _modules(folder):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MODULE_MAX_LINES:
            found.append(Finding(_rel(path), 1, f"module of {lines} lines (> {MODULE_MAX_LINES})"))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - first + 1
                if length > FUNCTION_MAX_LINES:
                    found.append(Finding(_rel(path), node.lineno, f"{node.name}() of {length} lines"))
    return found


def _imports(tree: ast.Module, name: str, is_package: bool) -> Iterator[tuple[ast.stmt, str, bool]]:
    """(statement, imported module, inside a function) for every import of a module."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, id(node) in inside
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            yield node, base, id(node) in inside
            for alias in node.names:
                yield node, f"{base}.{alias.name}", id(node) in inside


def _type_checking_only(tree: ast.Module) -> set[int]:
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded.update(id(n) for n in ast.walk(node))
    return guarded


def imports(folders: list[Path], rooms_of: Path | None = None) -> list[Finding]:
    """Function-level imports of the project, framework imports in the inner rooms, and import circles."""
    paths = [p for folder in folders for p in _modules(folder)]
    names = {module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {n: set() for n in names}
    found: list[Finding] = []
    for name, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = _type_checking_only(tree)
        inner = _inner_room(path, rooms_of)
        reported: set[int] = set()
        for node, target, in_function in _imports(tree, name, path.name == "__init__.py"):
            project = target.split(".")[0] in ("services", "shared")
            if id(node) not in reported and in_function and project:
                reported.add(id(node))
                found.append(Finding(_rel(path), node.lineno, f"import of {target} inside a function"))
            outer = target.split(".")[0]
            if id(node) not in reported and inner and outer in (FRAMEWORKS if inner == "domain" else WEB_AND_DRIVERS):
                reported.add(id(node))
                found.append(Finding(_rel(path), node.lineno, f"{inner} imports {outer}"))
            if project and target in names and target != name and id(node) not in guarded:
                graph[name].add(target)
    found.extend(_circles(graph, names))
    return found


def _inner_room(path: Path, service: Path | None) -> str | None:
    if service is None or service not in path.parents:
        return None
    rel = path.relative_to(service).parts
    if rel[0] == "domain":
        return "domain"
    if rel[0] in ("usecases", "usecases.py"):
        return "usecases"
    return None


def _circles(graph: dict[str, set[str]], names: dict[str, Path]) -> list[Finding]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[Finding] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    first = sorted(component)[0]
                    found.append(Finding(_rel(names[first]), 1, "import circle: " + " ↔ ".join(sorted(component))))
    return found


def _bare(schema: dict[str, object] | None) -> bool:
    """A body with no shape: no schema, `{}`, or an object with neither properties nor typed values."""
    if not schema:
        return True
    if "$ref" in schema or "allOf" in schema or "anyOf" in schema or "oneOf" in schema:
        return False
    if schema.get("type") == "array":
        items = schema.get("items")
        return not isinstance(items, dict) or _bare(items)
    if schema.get("type") == "object" or "type" not in schema:
        extra = schema.get("additionalProperties")
        return not schema.get("properties") and not (isinstance(extra, dict) and not _bare(extra))
    return False


def bare_bodies(document: dict[str, object]) -> list[str]:
    """Operations of an OpenAPI document whose JSON request or success answer has no model."""
    found: list[str] = []
    paths = document.get("paths")
    assert isinstance(paths, dict)
    for path, item in paths.items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            where = f"{method.upper()} {path}"
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and _bare(body.get("schema")):
                found.append(f"{where}: request body without a model")
            for status, answer in op["responses"].items():
                if not str(status).startswith("2") or str(status) == "204":
                    continue
                content = answer.get("content") or {}
                json_body = content.get("application/json")
                if json_body is not None and _bare(json_body.get("schema")):
                    found.append(f"{where}: {status} answer without a response model")
    return found


def check_service(service: Path) -> list[Finding]:
    return [*layout(service), *sizes(service), *imports([service, ROOT / "shared"], rooms_of=service)]


def main(argv: list[str]) -> int:
    targets = [ROOT / a for a in argv] or sorted(p for p in (ROOT / "services").iterdir() if (p / "app.py").exists())
    findings = [f for t in targets for f in check_service(t)]
    for finding in findings:
        print(finding)
    print(f"{len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
