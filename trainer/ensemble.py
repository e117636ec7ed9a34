"""Build the ensemble of finished runs: a Vertex AI tuning job's trials (`submit_vertex.sh
auto`), a search's members, or any runs of the same data and horizon.

    forecast ensemble --data_dir gs://B/prepared --members 'gs://B/JOB/*/checkpoints' \\
        --output_dir gs://B/JOB/ensemble
    forecast evaluate --model_dir gs://B/JOB/ensemble --data_dir gs://B/prepared --split test

Each run's best export is scored on the valid split's backtest windows beside the naive and
seasonal naive forecasts; the ensemble is selected, calibrated and exported to
OUTPUT_DIR/export/best with its leaderboard, as `forecast auto` does after training
(`trainer.search.auto`).
"""

import dataclasses
import sys
from typing import Optional, Sequence

from trainer.data.prepared import open_prepared
from trainer.search.auto import (
    DEFAULT_LEVELS,
    ensemble_of_runs,
    expand_member_patterns,
    interval_levels,
    summarize,
)
from trainer.util.cli import VERBOSITIES, build_flag_parser, flag, int_at_least, run_command
from trainer.util.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    """Flags of `python -m trainer.ensemble`."""

    data_dir: str = flag("", "The prepared directory (series layout, with a valid split) the "
                         "member runs trained on, local or gs://.")
    members: str = flag("", "The member runs' output directories: comma-separated paths or "
                        "patterns, local or gs:// (a tuning job's trials: "
                        "gs://BUCKET/JOB/*/checkpoints).")
    output_dir: str = flag("", "Where the ensemble goes: export/best/<timestamp> and the "
                           "leaderboard (a new export beside any earlier one).")
    ensemble_rounds: int = flag(25, "Rounds of greedy ensemble selection: the most members the "
                                "ensemble holds, counting repeats.", type=int_at_least(1))
    quantiles: str = flag(DEFAULT_LEVELS, "Levels of the ensemble's intervals, calibrated on "
                          "its residuals on the backtest windows (empty: a point forecast only).")
    verbosity: str = flag("INFO", "Log level.", choices=VERBOSITIES)

    def __post_init__(self) -> None:
        for name in ("data_dir", "members", "output_dir"):
            if not getattr(self, name):
                raise ConfigError(f"give --{name} (python -m trainer.ensemble --help says what "
                                  "each is)")
        interval_levels(self.quantiles)  # checked here: a bad value is a flag error


def ensemble(config: EnsembleConfig):
    """Score the member runs, select, export; the result for the closing lines."""
    prepared = open_prepared(config.data_dir)
    run_dirs = expand_member_patterns([p.strip() for p in config.members.split(",") if p.strip()])
    return ensemble_of_runs(prepared, run_dirs=run_dirs, output_dir=config.output_dir.rstrip("/"),
                            season=int(prepared.summary.get("season", 1)),
                            n_outputs=int(prepared.summary["n_outputs"]),
                            rounds=config.ensemble_rounds,
                            levels=interval_levels(config.quantiles))


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.ensemble") -> int:
    parser = build_flag_parser(EnsembleConfig, prog=prog,
                               description="Select an ensemble of finished runs on the valid "
                               "split's backtest windows and export it as one SavedModel.")
    return run_command(lambda config: summarize(ensemble(config)), argv, parser=parser,
                       make_config=EnsembleConfig, quiet_absl=True)


if __name__ == "__main__":
    sys.exit(main())
