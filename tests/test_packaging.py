"""Packaging: the library declares compatible ranges, requirements.txt the exact tested pins, and
every pin lies inside its range (so pip accepts both installs)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")             # Python >= 3.11
requirements = pytest.importorskip("packaging.requirements")

REPO = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirements.Requirement(requirement).name).lower()


def declared() -> dict[str, "requirements.Requirement"]:
    """pyproject.toml's run-time and optional requirements by normalised name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    entries = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        entries += extra
    return {_name(e): requirements.Requirement(e) for e in entries}


def pins() -> dict[str, str]:
    """Exact pins of requirements.txt and of the Makefile's ``--no-deps`` installs."""
    lines = (REPO / "requirements.txt").read_text().splitlines()
    lines += re.findall(r"--no-deps (\S+==\S+)", (REPO / "Makefile").read_text())
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = requirements.Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"requirements.txt must pin exactly: {line}"
            out[_name(line)] = spec.version
    return out


def test_library_dependencies_are_ranges_not_pins():
    exact = [str(r) for r in declared().values() if any(s.operator == "==" for s in r.specifier)]
    assert exact == [], f"pyproject.toml pins exactly: {exact}"


def test_every_pin_lies_inside_the_declared_range():
    ranges, pinned = declared(), pins()
    assert "torch" in pinned and "ultralytics" in pinned
    outside = [f"{name}=={version} not in {ranges[name].specifier}"
               for name, version in pinned.items()
               if name in ranges and not ranges[name].specifier.contains(version)]
    assert outside == []
    run_time = {_name(e) for e in tomllib.loads((REPO / "pyproject.toml").read_text())
                ["project"]["dependencies"]}
    assert run_time - set(pinned) == set(), "every run-time dependency has a tested pin"
