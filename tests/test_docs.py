"""The README and docs/ hold together: the flag reference is the code's, every link between
the pages lands on a file and a heading, every page is in the README's contents, and every
command block is either run by a test or says why not."""

import re
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from scripts.flag_reference import PAGE, REGENERATE, flag_reference
from tests.conftest import REPO_ROOT
from tests.docs_pages import DOCS, pages, section

# The line before every ```bash block: the test that runs it, or why none does.
RUN_BY = re.compile(r"^<!-- run by (tests/test_\w+\.py) -->$")
NOT_RUN = re.compile(r"^<!-- not run by the tests: .+ -->$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def outside_code(text: str) -> Iterator[Tuple[int, str]]:
    """(line number, line) of the lines of `text` outside fenced code blocks, with inline code
    spans removed."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, re.sub(r"`[^`]*`", "", line)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation other than - and _ dropped,
    spaces to hyphens.

    >>> github_anchor("The linear models in closed form (`--solver closed_form`)")
    'the-linear-models-in-closed-form---solver-closed_form'
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> List[str]:
    """Every heading's anchor in the page at `path` (a repeated heading gets -1, -2, ...)."""
    seen: Dict[str, int] = {}
    found = []
    fenced = False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = re.match(r"#{1,6} (.+)", line)
        if match and not fenced:
            anchor = github_anchor(match.group(1))
            found.append(anchor if anchor not in seen else f"{anchor}-{seen[anchor]}")
            seen[anchor] = seen.get(anchor, 0) + 1
    return found


def test_the_flag_reference_is_what_the_code_gives():
    assert PAGE.read_text() == flag_reference(), (
        f"docs/flags.md differs from the flags of the code: run {REGENERATE}")


@pytest.mark.parametrize("path", pages(), ids=lambda path: path.name)
def test_every_link_lands_on_a_file_and_a_heading(path):
    for number, line in outside_code(path.read_text()):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(REPO_ROOT)}:{number}: {target}"
            assert linked.exists(), f"{where}: no such file"
            if anchor:
                assert linked.suffix == ".md", f"{where}: an anchor into a file that is not a page"
                assert anchor in anchors(linked), (
                    f"{where}: {linked.relative_to(REPO_ROOT)} has no heading with that anchor")


def test_the_anchors_are_githubs():
    assert anchors(DOCS / "flags.md")[:2] == ["flag-reference", "python--m-trainerprepare"]


def test_the_readme_lists_every_page_and_every_page_links_back():
    contents = section("README.md", "## Contents")
    listed = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", contents))
    assert listed == {path.name for path in DOCS.glob("*.md")}
    for path in DOCS.glob("*.md"):
        assert "](../README.md#contents)" in path.read_text(), f"{path.name} does not link back"


def command_blocks() -> Iterator[Tuple[str, int, str, str]]:
    """(page, line number, the line before, the block) of every ```bash block."""
    for path in pages():
        lines = path.read_text().splitlines()
        name = path.relative_to(REPO_ROOT).as_posix()
        index = 0
        while index < len(lines):
            if lines[index].lstrip().startswith("```"):
                end = next(i for i in range(index + 1, len(lines)) if lines[i].lstrip().startswith("```"))
                if lines[index].strip() == "```bash":
                    yield name, index + 1, lines[index - 1], "\n".join(lines[index + 1:end])
                index = end
            index += 1


def test_every_command_block_is_run_by_a_test_or_says_why_not():
    blocks = list(command_blocks())
    assert len(blocks) > 10
    for name, number, before, _ in blocks:
        run_by = RUN_BY.match(before)
        assert run_by or NOT_RUN.match(before), (
            f"{name}:{number}: a ```bash block needs the line <!-- run by tests/FILE.py --> or "
            "<!-- not run by the tests: WHY --> before it")
        if run_by:
            test_file = REPO_ROOT / run_by.group(1)
            assert test_file.exists(), f"{name}:{number}: {run_by.group(1)} does not exist"
            assert f'"{name}"' in test_file.read_text(), (
                f"{name}:{number}: {run_by.group(1)} does not read {name}")

