"""The docs say what the repository holds: README sections that docstrings point to exist, and no
document points to files outside the repository (besides the real-data folder, which is data)."""
from __future__ import annotations

import re
from pathlib import Path

import stgraph

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "requirements.txt", "pyproject.toml", "Makefile", "setup.cfg")


def readme_headings() -> set[str]:
    text = (REPO / "README.md").read_text()
    return {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", text, flags=re.MULTILINE)}


def test_package_docstring_points_to_an_existing_readme_section():
    pointers = re.findall(r'"([^"]+)" in the README', stgraph.__doc__)
    assert pointers, "the package docstring names its README section"
    assert set(pointers) <= readme_headings()


def test_documents_point_only_inside_the_repository():
    outside = []
    for name in DOCUMENTS:
        for lineno, line in enumerate((REPO / name).read_text().splitlines(), 1):
            for target in re.findall(r"\.\./[\w./-]+", line):
                if not target.startswith("../shared/data"):  # the real-data folder (not shipped)
                    outside.append(f"{name}:{lineno}: {target}")
    assert outside == []
