"""Issue 15's rooms, asserted for every service that has moved into them (see `rooms.py` for the rules)."""

from __future__ import annotations

import ast
import importlib

import pytest

from tests.architecture.rooms import FRAMEWORKS, ROOT, _circles, bare_bodies, check_service, imports, sizes

# Services that follow the layout; a service joins the list in the change that moves it into its rooms.
ROOMED: tuple[str, ...] = ("activities", "gateway", "notifier", "registry", "reporting")


@pytest.mark.parametrize("service", ROOMED)
def test_service_follows_the_rooms(service: str) -> None:
    findings = check_service(ROOT / "services" / service)
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize("service", ROOMED)
def test_every_body_has_a_model(service: str) -> None:
    app = importlib.import_module(f"services.{service}.app").create_app()
    assert not bare_bodies(app.openapi())


def _answer(schema: dict[str, object]) -> dict[str, object]:
    ok = {"200": {"content": {"application/json": {"schema": schema}}}}
    return {"paths": {"/x": {"get": {"responses": ok}}}}


def test_a_bare_answer_is_found_and_a_model_is_not() -> None:
    assert bare_bodies(_answer({})) == ["GET /x: 200 answer without a response model"]
    assert bare_bodies(_answer({"type": "object", "additionalProperties": True}))
    assert bare_bodies(_answer({"type": "array", "items": {}}))
    assert not bare_bodies(_answer({"$ref": "#/components/schemas/Unit"}))
    assert not bare_bodies(_answer({"type": "object", "additionalProperties": {"type": "integer"}}))


def test_an_import_circle_is_found_once_with_its_members() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    names = {n: ROOT / f"{n}.py" for n in graph}
    found = _circles(graph, names)
    assert [f.rule for f in found] == ["import circle: a ↔ b ↔ c"]


def test_the_services_not_yet_moved_are_told_what_they_lack() -> None:
    for service in sorted(p.name for p in (ROOT / "services").iterdir() if (p / "app.py").exists()):
        if service not in ROOMED:
            assert check_service(ROOT / "services" / service), f"{service} follows the rooms: add it to ROOMED"


PURE_SHARED = ("scope.py", "vocabulary.py", "programme.py", "calendar.py", "clock.py")


@pytest.mark.parametrize("module", PURE_SHARED)
def test_the_shared_rules_import_no_framework_and_no_driver(module: str) -> None:
    """The scope rule, the vocabulary and the calendar are read by every service's domain: pure Python only."""
    tree = ast.parse((ROOT / "shared" / module).read_text(encoding="utf-8"))
    imported = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not imported & set(FRAMEWORKS), imported & set(FRAMEWORKS)


@pytest.mark.parametrize("folder", ["shared", "infra", "web/scripts"])
def test_outside_the_services_no_module_or_function_is_too_long(folder: str) -> None:
    """Issue 15's limits hold everywhere but in tests and benchmarks: modules ≤ 500 lines, functions ≤ 60."""
    findings = sizes(ROOT / folder)
    assert not findings, "\n".join(map(str, findings))


def test_no_import_circle_and_no_hidden_import_across_services_and_shared() -> None:
    findings = imports([ROOT / "services", ROOT / "shared"])
    assert not findings, "\n".join(map(str, findings))
