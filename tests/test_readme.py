"""The README stays true: it names the two commands and documents every setting a service reads."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import services
from infra.local.runner import InfraSettings
from shared.settings import ServiceSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def settings_classes() -> list[type]:
    found: list[type] = [ServiceSettings, InfraSettings]
    for module in pkgutil.iter_modules(services.__path__):
        try:
            settings = importlib.import_module(f"services.{module.name}.settings")
        except ModuleNotFoundError:
            continue
        found += [c for c in vars(settings).values() if isinstance(c, type) and issubclass(c, ServiceSettings)]
    return found


def test_the_readme_names_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README


def test_every_setting_is_documented_in_the_readme() -> None:
    names = {f"STVS_{field.upper()}" for cls in settings_classes() for field in cls.model_fields}  # type: ignore[attr-defined]
    missing = sorted(n for n in names if f"`{n}`" not in README)
    assert missing == [], f"settings missing from README.md: {missing}"


def test_every_file_the_readme_and_the_docs_name_exists() -> None:
    """A guarantee points at the test that proves it: a moved or renamed file must not leave the pointer dangling."""
    root = Path(__file__).resolve().parents[1]
    texts = [README, *(p.read_text(encoding="utf-8") for p in (root / "docs").glob("*.md"))]
    named = {
        m
        for text in texts
        for m in re.findall(r"(?<![\w/.])((?:tests|services|shared|infra|benchmarks)/[\w/]+\.py)", text)
    }
    missing = sorted(p for p in named if not (root / p).exists())
    assert missing == [], f"files named in README.md or docs/ that do not exist: {missing}"
