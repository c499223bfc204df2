"""docs/deploying-ha.md shows the configuration files the HA rig runs, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ha.configs import example_files

PAGE = Path(__file__).resolve().parents[2] / "docs" / "deploying-ha.md"


def fenced_blocks(text: str) -> dict[str, str]:
    """Code blocks introduced by a line ``<!-- file: NAME -->``, by NAME."""
    blocks: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("<!-- file: "):
            name = line.removeprefix("<!-- file: ").split(" ", 1)[0]
            end = next(i for i in range(index + 2, len(lines)) if lines[i].startswith("```"))
            blocks[name] = "".join(lines[index + 2:end])
    return blocks


@pytest.mark.parametrize("name", sorted(example_files()))
def test_page_shows_the_rig_configuration(name: str) -> None:
    assert fenced_blocks(PAGE.read_text())[name] == example_files()[name]
