"""One command for all of them: `forecast SUBCOMMAND FLAGS` (the console script) or
`python -m trainer SUBCOMMAND FLAGS`, each the same as `python -m trainer.<module> FLAGS`.

    forecast prepare --input daily_sales.csv --timestamp_column date --target store_a \\
        --output_dir prepared --season 7 --valid_points 70 --test_points 70
    forecast train --data_dir prepared --output_dir runs/store_a --train_steps 3000
    forecast evaluate --model_dir runs/store_a --data_dir prepared
    forecast predict --model_dir runs/store_a --series daily_sales.csv --output forecast.csv
    forecast train --help                     # the flags of one subcommand

`SUBCOMMANDS` is the one table of them: a subcommand is one entry, its module (which has a
`main(argv, prog=...) -> exit status`) and a line for `forecast --help`. The module is imported
only when its subcommand runs, so `forecast --help` starts without TensorFlow; so does a
subcommand's `--help`, since TensorFlow loads when a command first uses it (`trainer.util.lazy`).
"""

import difflib
import importlib
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

# subcommand -> (module with main(argv), what it does)
SUBCOMMANDS: Dict[str, Tuple[str, str]] = {
    "prepare": ("trainer.prepare", "cut a raw series CSV into a prepared directory (prepare.json)"),
    "train": ("trainer.task", "train, evaluate and export a model"),
    "evaluate": ("trainer.evaluate", "score an exported model on a prepared split"),
    "auto": ("trainer.auto", "search models on backtests; export their ensemble as one SavedModel"),
    "ensemble": ("trainer.ensemble", "the ensemble of finished runs (a tuning job's trials)"),
    "refit": ("trainer.refit", "train a run's chosen configuration again on train and valid"),
    "predict": ("trainer.predict", "forecast with an exported model; CSV and plot"),
    "instances": ("trainer.instances", "the JSON request of a deployed model; its answer as a CSV"),
    "cluster": ("trainer.local_cluster", "train as a TF_CONFIG cluster on this machine"),
    "storage": ("trainer.storage", "upload local shards to Cloud Storage"),
}
EXIT_BAD_FLAG = 2  # as argparse's, for a subcommand that does not exist


def usage() -> str:
    """`forecast --help`: the subcommands and what each does."""
    width = max(len(name) for name in SUBCOMMANDS)
    return "\n".join(
        ["usage: forecast SUBCOMMAND [FLAGS]   (or python -m trainer SUBCOMMAND [FLAGS])", "",
         "subcommands (forecast SUBCOMMAND --help for its flags):"]
        + [f"  {name:{width}}  {note}  (python -m {module})"
           for name, (module, note) in SUBCOMMANDS.items()])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the subcommand named by the first argument with the others; its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else EXIT_BAD_FLAG
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
        print(f"{usage()}\n\nerror: no subcommand {name!r}"
              f"{f' (did you mean {close[0]}?)' if close else ''}; choose one of "
              f"{', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return EXIT_BAD_FLAG
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest, prog=f"{launcher()} {name}")


def launcher() -> str:
    """How the user ran this module, for the subcommands' usage lines: `python -m trainer`, or
    the console script `forecast`."""
    return "forecast" if Path(sys.argv[0]).stem == "forecast" else "python -m trainer"


if __name__ == "__main__":
    sys.exit(main())
