"""Write docs/flags.md, the flag reference of every command, from the commands' own parsers.

    python -m scripts.flag_reference          # rewrite docs/flags.md
    python -m scripts.flag_reference --check  # exit 1 when docs/flags.md is out of date

Each table row is one flag of the parser that the command builds from its config dataclass
(`trainer.util.cli.build_flag_parser`): its names, its default as `--help` shows it ("(empty)"
for none) and its help text, so the page cannot say anything the code does not.
`tests/test_docs.py` regenerates the page and fails when the file differs.
"""

import argparse
import sys
from pathlib import Path
from typing import List, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE = REPO_ROOT / "docs" / "flags.md"
REGENERATE = "python -m scripts.flag_reference"

HEADER = f"""# Flag reference

Every flag of every command, generated from the commands' own parsers by `{REGENERATE}`
(`tests/test_docs.py` fails when this page differs from what the code gives; do not edit it by
hand). `forecast SUBCOMMAND` is `python -m trainer.SUBCOMMAND` (`train` is `trainer.task`,
`cluster` `trainer.local_cluster`), and `forecast SUBCOMMAND --help` prints the same flags.

[Back to the README](../README.md) · [Contents](../README.md#contents)
"""

TRAINER_NOTE = """`python -m trainer.task --help` prints the same. Flag names are the `parameterName`s that
`config.yaml` tunes. Booleans take `--flag` / `--no-flag`; unknown flags are an error (exit 2)."""


def command_parsers() -> List[Tuple[str, str, argparse.ArgumentParser]]:
    """(module, `forecast` subcommand, parser) of each command with flags, in `forecast --help`'s
    order. `trainer.storage` is left out: its one subcommand takes files, not flags."""
    from trainer.__main__ import SUBCOMMANDS
    from trainer.auto import AutoConfig
    from trainer.ensemble import EnsembleConfig
    from trainer.evaluate import EvaluateConfig
    from trainer.instances import InstancesConfig
    from trainer.local_cluster import build_parser as cluster_parser
    from trainer.predict import PredictConfig
    from trainer.prepare import PrepareConfig
    from trainer.refit import RefitConfig
    from trainer.training.config import build_parser as trainer_parser
    from trainer.util.cli import build_flag_parser

    parsers = {
        "trainer.task": trainer_parser(), "trainer.local_cluster": cluster_parser(),
        **{f"trainer.{name}": build_flag_parser(config, prog=f"python -m trainer.{name}", description="")
           for name, config in (("prepare", PrepareConfig), ("auto", AutoConfig),
                                ("ensemble", EnsembleConfig),
                                ("evaluate", EvaluateConfig),
                                ("refit", RefitConfig), ("predict", PredictConfig),
                                ("instances", InstancesConfig))}}
    return [(module, subcommand, parsers[module]) for subcommand, (module, _) in SUBCOMMANDS.items()
            if module in parsers]


def flag_rows(parser: argparse.ArgumentParser) -> List[str]:
    """One Markdown table row per flag: names, default, help."""
    rows = []
    for action in parser._actions:
        if action.dest == "help":
            continue
        names = " / ".join(f"`{name}`" for name in action.option_strings)
        default = "(empty)" if action.default in ("", None) else f"`{action.default}`"
        # argparse help strings escape % as %%; a | would end the table cell.
        help_text = (action.help or "").replace("%%", "%").replace("|", "\\|")
        rows.append(f"| {names} | {default} | {help_text} |")
    return rows


def flag_reference() -> str:
    """The text of docs/flags.md."""
    from trainer.__main__ import SUBCOMMANDS

    sections = [HEADER]
    for module, subcommand, parser in command_parsers():
        note = SUBCOMMANDS[subcommand][1]
        section = [f"## `python -m {module}`", "", f"`forecast {subcommand}`: {note}.", ""]
        if module == "trainer.task":
            section += [TRAINER_NOTE, ""]
        section += ["| flag | default | meaning |", "|---|---|---|"] + flag_rows(parser)
        sections.append("\n".join(section) + "\n")
    return "\n".join(sections)


def main(argv: List[str]) -> int:
    text = flag_reference()
    if argv == ["--check"]:
        if PAGE.read_text() != text:
            print(f"{PAGE} is out of date: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    if argv:
        print(f"usage: {REGENERATE} [--check]", file=sys.stderr)
        return 2
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
