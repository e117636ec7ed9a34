"""The README and the pages of docs/, for the tests that check them against the code.

A section is read by its heading, wherever the page holds it: `section("docs/models.md",
"## Models")` is the text from that heading to the next heading of the same or a higher level.
"""

import re
from pathlib import Path
from typing import List

from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def pages() -> List[Path]:
    """README.md and every page of docs/."""
    return [REPO_ROOT / "README.md"] + sorted(DOCS.glob("*.md"))


def page(name: str) -> str:
    """The text of README.md or docs/NAME.md, by its path from the repository root."""
    return (REPO_ROOT / name).read_text()


def section(name: str, heading: str) -> str:
    """The text under `heading` (a whole line, e.g. "## Models") in page `name`, up to the next
    heading of its level or above, outside code blocks."""
    text = page(name)
    lines = text.splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    if heading not in lines:
        raise AssertionError(f"{name} has no heading {heading!r}")
    start = lines.index(heading) + 1
    end, fenced = len(lines), False
    for index in range(start, len(lines)):
        if lines[index].lstrip().startswith("```"):
            fenced = not fenced
        match = re.match(r"(#+) ", lines[index])
        if not fenced and match and len(match.group(1)) <= level:
            end = index
            break
    return "\n".join(lines[start:end]) + "\n"
