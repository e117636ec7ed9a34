"""Search for a forecaster: train a portfolio of candidates, choose an ensemble of them on the
valid split's backtest windows, and export it as one SavedModel.

    forecast prepare --input sales.csv ... --output_dir prepared --valid_windows 3
    forecast auto --data_dir prepared --output_dir runs/auto --time_limit 3600
    forecast evaluate --model_dir runs/auto --data_dir prepared --split test

The candidates, cheapest first (`trainer.search.portfolio`): naive and seasonal naive, the
linear networks fitted in closed form, then the ranked networks trained, at each look-back,
with a small grid of settings and more seeds. Each is an ordinary run in
RUN/members/NAME, so a search run again resumes, and a candidate that fails is a line in the
leaderboard. The ensemble is chosen by greedy selection with replacement on the members'
validation forecasts (`trainer.search.selection`) and exported to RUN/export/best: evaluate,
predict, instances and deploy_vertex.sh take RUN as they take a training run.
"""

import dataclasses
import os
import shlex
import sys
from typing import List, NoReturn, Optional, Sequence, Tuple

from trainer.data.prepared import PreparedSeries, open_prepared
from trainer.search.auto import (
    DEFAULT_LEVELS,
    SearchPlan,
    check_look_backs,
    data_look_backs,
    interval_levels,
    run_search,
    select_candidates,
    summarize,
)
from trainer.search.members import trainer_command
from trainer.search.portfolio import Candidate
from trainer.util.cli import VERBOSITIES, build_flag_parser, flag, float_above, int_at_least, run_command
from trainer.util.errors import ConfigError

# The share of --time_limit kept for the selection and the ensemble's export at the end.
RESERVE_SHARE = 0.05
# A trial reports the scale-free metric that the search chooses by to the tuning service.
TRIAL_METRIC = "--hypertune_metric=mase"


def _patterns(text: str) -> Tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _int_list(text: str, *, flag_name: str) -> List[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag_name} {text!r}: give whole numbers separated by commas, "
                          "e.g. 26,52") from None
    if any(value < 1 for value in values):
        raise ConfigError(f"{flag_name} {text!r}: every value must be at least 1")
    return values


@dataclasses.dataclass(frozen=True)
class AutoConfig:
    """Flags of `python -m trainer.auto`."""

    data_dir: str = flag("", "A prepared directory of the series layout (forecast prepare), "
                         "local or gs://, with a valid split: the search chooses on its windows.")
    output_dir: str = flag("", "Where the search writes: members/NAME (one run per candidate), "
                           "export/best (the ensemble) and the leaderboard. Run again, it resumes.")
    time_limit: float = flag(3600.0, "Seconds for the whole search: candidates are started "
                             "while time is left, and one still training at the end is stopped "
                             "cleanly (its last evaluation counts).", type=float_above(0.0))
    candidate_time_limit: float = flag(0.0, "Seconds for one trained candidate at most (0: a "
                                       "quarter of --time_limit).",
                                       type=float_above(0.0, inclusive=True))
    look_backs: str = flag("", "Look-backs (n_inputs) to search, comma-separated, the first "
                           "searched most (empty: prepare.json's n_inputs, then the longest of "
                           "3 and 2 times it that 3/4 of the series' valid windows hold, and "
                           "one halfway between in whole seasons).")
    seeds: str = flag("1", "Seeds of the trained candidates, comma-separated: the first for "
                      "every candidate, the others for the ranked networks again.")
    include: str = flag("", "Search only the candidates whose names match one of these "
                        "comma-separated patterns (fnmatch: 'dnn-*,*closed_form*'; the names are "
                        "in the leaderboard); empty: all.")
    max_candidates: int = flag(0, "Train at most this many candidates of the portfolio, in its "
                               "order (0: as many as --time_limit allows).", type=int_at_least(0))
    ensemble_rounds: int = flag(25, "Rounds of greedy ensemble selection: the most members the "
                                "ensemble holds, counting repeats.", type=int_at_least(1))
    quantiles: str = flag(DEFAULT_LEVELS, "Levels of the ensemble's intervals, "
                          "calibrated on its own residuals on the backtest windows (the 80%% "
                          "and 95%% intervals by default; empty: a point forecast only).")
    refit: bool = flag(False, "After the search, refit each chosen member on train and valid "
                       "for its chosen steps (forecast refit) and export the ensemble of the "
                       "refits, with the weights and interval offsets chosen before (about as "
                       "long again as training them, beyond --time_limit).")
    candidate: str = flag("", "Train this one candidate as a trial of a tuning job, then exit "
                          "(`scripts/submit_vertex.sh auto`: the trial's parameter): trainer.task "
                          "with its flags, writing where Vertex AI's AIP_* variables say unless "
                          "--output_dir is given.")
    list_candidates: bool = flag(False, "Print the names of the candidates that train (one a "
                                 "line, in the portfolio's order) and exit; needs no data when "
                                 "--look_backs is given.")
    trainer_flags: str = flag("", "More trainer.task flags for every candidate that trains, "
                              "after the portfolio's own, so that they override them (e.g. "
                              "'--train_steps 1000 --batch_size 32').")
    verbosity: str = flag("INFO", "Log level.", choices=VERBOSITIES)

    def __post_init__(self) -> None:
        if not (self.data_dir or self.list_candidates):
            raise ConfigError("give --data_dir, a prepared directory of the series layout "
                              "(forecast prepare --output_dir ...)")
        if not (self.output_dir or self.candidate or self.list_candidates):
            raise ConfigError("give --output_dir, where the search writes its members and the "
                              "ensemble")
        interval_levels(self.quantiles)  # checked here: a bad value is a flag error


def searched_look_backs(config: AutoConfig, prepared: Optional[PreparedSeries] = None
                        ) -> List[int]:
    """--look_backs, or when it is empty those the data's valid windows hold
    (`data_look_backs`; `prepared`: the data of --data_dir, opened when not given)."""
    if config.look_backs:
        return _int_list(config.look_backs, flag_name="--look_backs")
    return list(data_look_backs(prepared or open_prepared(config.data_dir)))


def make_plan(config: AutoConfig) -> SearchPlan:
    """The search's plan: the flags, with the window and season of the data's prepare.json."""
    prepared = open_prepared(config.data_dir)  # checks that it is of the series layout
    summary = prepared.summary
    look_backs = searched_look_backs(config, prepared)
    season = int(summary.get("season", 1))
    check_look_backs(look_backs, season=season)
    return SearchPlan(
        prepared=prepared, output_dir=config.output_dir.rstrip("/"),
        time_limit=config.time_limit,
        candidate_time_limit=config.candidate_time_limit or config.time_limit / 4,
        reserve=RESERVE_SHARE * config.time_limit, look_backs=look_backs,
        seeds=_int_list(config.seeds, flag_name="--seeds"), n_outputs=int(summary["n_outputs"]),
        season=season, max_candidates=config.max_candidates,
        include=_patterns(config.include),
        ensemble_rounds=config.ensemble_rounds,
        trainer_flags=tuple(shlex.split(config.trainer_flags)),
        levels=interval_levels(config.quantiles), refit=config.refit)


def listed_candidates(config: AutoConfig) -> List[Candidate]:
    """The candidates that train, of the searched look-backs, --seeds,
    --include and --max_candidates."""
    look_backs = searched_look_backs(config)
    return [candidate for candidate in select_candidates(
        look_backs=look_backs, seeds=_int_list(config.seeds, flag_name="--seeds"),
        include=_patterns(config.include), max_candidates=config.max_candidates)
        if not candidate.baseline]


def train_trial(config: AutoConfig) -> NoReturn:
    """Become `python -m trainer.task` with the flags of --candidate (the process is replaced,
    so that the tuning service's signals and exit status are the trainer's own)."""
    by_name = {candidate.name: candidate for candidate in listed_candidates(config)}
    if config.candidate not in by_name:
        raise ConfigError(f"--candidate {config.candidate} is not a candidate of --look_backs "
                          f"{config.look_backs or '(chosen from the data)'} and --seeds {config.seeds}; "
                          "list them with --list_candidates")
    command = trainer_command(by_name[config.candidate], data_dir=config.data_dir,
                              output_dir=config.output_dir,
                              extra_flags=[TRIAL_METRIC, *shlex.split(config.trainer_flags)])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def run(config: AutoConfig) -> str:
    """The command: list the candidates, train one trial, or search."""
    if config.list_candidates:
        return "\n".join(candidate.name for candidate in listed_candidates(config))
    if config.candidate:
        train_trial(config)
    return summarize(run_search(make_plan(config)))


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.auto") -> int:
    parser = build_flag_parser(AutoConfig, prog=prog,
                               description="Search a portfolio of forecasters on the valid "
                               "split's backtest windows and export their ensemble as one "
                               "SavedModel.")
    # --list_candidates only names them: submit_vertex.sh runs it on a machine that may not
    # reach the bucket of --data_dir, so Cloud Storage is not checked for it.
    return run_command(run, argv, parser=parser, make_config=AutoConfig, quiet_absl=True,
                       storage_unused=lambda given: bool(given.get("list_candidates")))


if __name__ == "__main__":
    sys.exit(main())
