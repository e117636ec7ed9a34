"""The model search of `forecast auto`: train the portfolio's candidates until the time limit,
score each on the valid split's backtest windows, select an ensemble greedily and export it
as one SavedModel.

    RUN/members/NAME/          one ordinary run per candidate (resumes; search.json, train.log)
    RUN/export/best/TIMESTAMP  the ensemble's SavedModel: what evaluate, predict and deploy take
    RUN/leaderboard.csv, .json every member, the baselines and the ensemble

The search is judged by the valid split alone; the test split stays out of it, for
`forecast evaluate --model_dir RUN --split test`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from trainer.data.prepared import PreparedSeries
from trainer.data.schema import FEATURE_KEY
from trainer.data.series_reads import split_histories
from trainer.model.calibration import CALIBRATION_MIN_WINDOWS, Calibration, fit_calibration
from trainer.model.ensemble import SAVED_MODEL_MEMBER, Member, export_ensemble
from trainer.model.heads import parse_quantiles
from trainer.model.metrics import BASELINES
from trainer.model.serving import BEST_EXPORTER, EXPORT_DIR, load_exported_model
from trainer.search.backtest import (
    Backtest,
    baseline_forecast,
    member_forecast,
    read_backtest,
)
from trainer.search.leaderboard import Row, table, write_leaderboard
from trainer.search.members import DONE, MemberRun, refit_member, run_member
from trainer.search.portfolio import SEASONAL_NAIVE, Candidate, portfolio
from trainer.search.selection import Selection, combine, greedy_selection
from trainer.training.run_dir import load_config_dict
from trainer.util.errors import ConfigError, TrainerError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

MEMBERS_DIR = "members"
# The flags of a member run's config.json that the leaderboard shows for it.
RUN_SETTINGS = ("model", "solver", "n_inputs", "scaling", "loss", "learning_rate", "hidden_units",
                "dropout", "seed")
# A candidate is started only with at least this much time left for it.
MIN_CANDIDATE_SECS = 30.0
ENSEMBLE = "ensemble"


@dataclasses.dataclass(frozen=True)
class SearchPlan:
    """What the search will do: resolved from its flags and the data's prepare.json."""

    prepared: PreparedSeries  # the data: its directory, prepare.json and shards
    output_dir: str
    time_limit: float
    candidate_time_limit: float
    reserve: float  # kept for the selection and the export at the end
    look_backs: Sequence[int]
    seeds: Sequence[int]
    n_outputs: int
    season: int
    max_candidates: int
    ensemble_rounds: int
    trainer_flags: Sequence[str] = ()  # after each candidate's own flags
    levels: Sequence[float] = ()  # of the ensemble's calibrated intervals; () for none
    include: Sequence[str] = ()  # fnmatch patterns of the candidates' names; (): all
    refit: bool = False  # refit the chosen members on train and valid after the search


@dataclasses.dataclass
class Scored:
    """A candidate with a forecast of the backtest windows."""

    candidate: Candidate
    forecast: np.ndarray
    score: float
    seconds: float
    path: str = ""  # its SavedModel, for a trained member
    run_dir: str = ""  # its run directory, for a trained member


@dataclasses.dataclass(frozen=True)
class SearchResult:
    rows: List[Row]
    selection: Selection
    export_path: str
    leaderboard_files: List[str]
    members_trained: int
    seconds: float


def _format_secs(secs: float) -> str:
    secs = max(int(secs), 0)
    return f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def select_candidates(*, look_backs: Sequence[int], seeds: Sequence[int],
                      include: Sequence[str] = (), max_candidates: int = 0) -> List[Candidate]:
    """The portfolio's candidates whose names match one of `include` (fnmatch; () for all),
    the first `max_candidates` of them (0: all)."""
    candidates = portfolio(look_backs=look_backs, seeds=seeds)
    if include:
        candidates = [c for c in candidates
                      if any(fnmatch.fnmatchcase(c.name, pattern) for pattern in include)]
        if not candidates:
            raise ConfigError(f"--include {','.join(include)} matches no candidate; the names "
                              "are like " + ", ".join(c.name for c in portfolio(
                                  look_backs=look_backs, seeds=seeds)[::9]))
    return candidates[:max_candidates] if max_candidates else candidates


def candidates_of(plan: SearchPlan) -> List[Candidate]:
    """The candidates of the plan (`select_candidates`)."""
    return select_candidates(look_backs=plan.look_backs, seeds=plan.seeds, include=plan.include,
                             max_candidates=plan.max_candidates)


def _score_member(backtest: Backtest, member: MemberRun, candidate: Candidate) -> Optional[Scored]:
    if not member.has_export():
        return None
    exported = load_exported_model(member.directory)
    forecast = member_forecast(backtest, exported)
    return Scored(candidate=candidate, forecast=forecast, score=backtest.score(forecast),
                  seconds=member.seconds, path=exported.path, run_dir=member.directory)


class SearchError(TrainerError):
    """The search found nothing to export (exit 1, with what to do)."""


def ensemble_member(scored: Scored, *, weight: float, season: int) -> Member:
    """The ensemble's member of a scored candidate: its export, or the baseline itself."""
    if scored.path:
        return Member(SAVED_MODEL_MEMBER, weight, path=scored.path, name=scored.candidate.name)
    kind = scored.candidate.baseline
    return Member(kind, weight, season=season if kind == SEASONAL_NAIVE else 0,
                  name=scored.candidate.name)


def ensemble_calibration(backtest: Backtest, forecast: np.ndarray, *,
                         levels: Sequence[float]) -> Optional[Calibration]:
    """The ensemble's intervals: split-conformal offsets from its own residuals on the backtest
    windows (`trainer.model.calibration`, as a calibrated point model's), or None with a
    warning when there are too few windows (or no `levels`)."""
    if not levels:
        return None
    if backtest.windows < CALIBRATION_MIN_WINDOWS:
        logger.warning("the ensemble's intervals are not calibrated: %d backtest windows, fewer "
                       "than the %d that calibration needs; prepare with more --valid_windows "
                       "(or more series)", backtest.windows, CALIBRATION_MIN_WINDOWS)
        return None
    return fit_calibration(actual=backtest.scored.labels, levels=levels, point=forecast,
                           inputs=backtest.scored.features[FEATURE_KEY])


def run_search(plan: SearchPlan) -> SearchResult:
    """Train, score, select and export (the module's docstring says where each goes)."""
    start = time.monotonic()
    deadline = start + plan.time_limit
    candidates = candidates_of(plan)
    # The windows of the longest look-back that a candidate of the plan reads (not that of the
    # look-backs --include leaves out: they would leave short series out of the choice).
    longest = max((c.n_inputs for c in candidates if not c.baseline), default=plan.look_backs[0])
    backtest = read_backtest(plan.prepared, n_inputs=longest, n_outputs=plan.n_outputs,
                             season=plan.season)
    logger.info("the search scores every candidate on %d backtest windows of the valid split "
                "(look-back %d for all, the shorter members reading its end), by MASE per series",
                backtest.windows, backtest.n_inputs)
    baselines = {s.candidate.baseline: (s, row) for s, row in zip(*score_baselines(backtest))}
    scored: List[Scored] = []
    rows: List[Row] = []
    trained = 0
    for number, candidate in enumerate(candidates, 1):
        left = deadline - plan.reserve - time.monotonic()
        if candidate.baseline:
            baseline, row = baselines[candidate.baseline]
            scored.append(baseline)
            rows.append(row)
        elif left < MIN_CANDIDATE_SECS:
            rows.append(Row(member=candidate.name, settings=candidate.describe(),
                            status="not run", valid_mase=None, seconds=0.0,
                            message="the time limit was reached"))
            continue
        else:
            member = run_member(candidate, data_dir=plan.prepared.data_dir,
                                directory=f"{plan.output_dir}/{MEMBERS_DIR}/{candidate.name}",
                                time_limit=min(left, plan.candidate_time_limit),
                                extra_flags=plan.trainer_flags)
            trained += 1
            result = _score_member(backtest, member, candidate)
            if result is not None:
                scored.append(result)
            message = member.message if member.status != DONE else ""
            if result is None and member.status != "failed":
                message = "no evaluation before it stopped"
            rows.append(Row(member=candidate.name, settings=candidate.describe(),
                            status=member.status, valid_mase=result.score if result else None,
                            seconds=member.seconds, message=message))
        best = min(s.score for s in scored)
        logger.info("search %d/%d %s: valid mase %s (%s); best so far %.4f; %s left",
                    number, len(candidates), candidate.name,
                    "-" if rows[-1].valid_mase is None else f"{rows[-1].valid_mase:.4f}",
                    rows[-1].status, best, _format_secs(deadline - time.monotonic()))
    if not any(s.path for s in scored):
        raise SearchError(f"no candidate trained and evaluated within --time_limit "
                          f"{plan.time_limit:.0f} s (see {plan.output_dir}/{MEMBERS_DIR}/*/train.log);"
                          " give the search more time, or fewer trainer steps with --trainer_flags")
    return build_ensemble(scored, rows, backtest=backtest, output_dir=plan.output_dir,
                          rounds=plan.ensemble_rounds, levels=plan.levels, trained=trained,
                          start=start, refit_time_limit=plan.candidate_time_limit if plan.refit
                          else 0.0)


def score_baselines(backtest: Backtest) -> Tuple[List[Scored], List[Row]]:
    """The naive and seasonal naive forecasts of the backtest windows, as members."""
    scored, rows = [], []
    for baseline in BASELINES:
        candidate = Candidate(name=baseline, baseline=baseline)
        forecast = baseline_forecast(backtest, baseline)
        scored.append(Scored(candidate=candidate, forecast=forecast,
                             score=backtest.score(forecast), seconds=0.0))
        rows.append(Row(member=candidate.name, settings=candidate.describe(), status="baseline",
                        valid_mase=scored[-1].score, seconds=0.0))
    return scored, rows


def refit_members(scored: Sequence[Scored], weights: np.ndarray, *, time_limit: float
                  ) -> Dict[str, str]:
    """{name: the refit's SavedModel} of the chosen trained members (weight > 0), each refit on
    train and valid for its chosen steps (`trainer.search.members.refit_member`); a member
    whose refit fails keeps its own model."""
    refits = {}
    for member, weight in zip(scored, weights):
        if weight > 0 and member.run_dir:
            logger.info("refitting %s on train and valid", member.candidate.name)
            path = refit_member(member.run_dir, time_limit=time_limit)
            if path:
                refits[member.candidate.name] = path
    return refits


def build_ensemble(scored: Sequence[Scored], rows: Sequence[Row], *, backtest: Backtest,
                   output_dir: str, rounds: int, levels: Sequence[float], trained: int,
                   start: float, refit_time_limit: float = 0.0) -> SearchResult:
    """Select the ensemble of the `scored` members (at least one trained) on the backtest
    windows, export it with its calibrated intervals to OUTPUT_DIR/export/best and write the
    leaderboard there (`rows`, with the weights and the ensemble's row added).

    With `refit_time_limit` > 0 the chosen trained members are refit on train and valid first
    and the ensemble holds the refits, with the weights and the intervals' offsets chosen on
    the held-out forecasts of the runs before (as `trainer.refit` applies its run's
    calibration)."""
    # The export needs one trained member (it sets the signature and the assets).
    selection = greedy_selection(np.stack([s.forecast for s in scored]),
                                 targets=backtest.scored.labels, series=backtest.scored.series,
                                 scales=backtest.scored.scales.mae_season, rounds=rounds,
                                 required=[index for index, s in enumerate(scored) if s.path])
    weights: Dict[str, float] = {s.candidate.name: float(w)
                                 for s, w in zip(scored, selection.weights)}
    refits = (refit_members(scored, selection.weights, time_limit=refit_time_limit)
              if refit_time_limit > 0 else {})
    rows = [dataclasses.replace(row, weight=weights.get(row.member, 0.0),
                                message=(f"refit on train and valid: {refits[row.member]}"
                                         if row.member in refits else row.message))
            for row in rows]
    members = [ensemble_member(dataclasses.replace(s, path=refits.get(s.candidate.name, s.path)),
                               weight=float(w), season=backtest.season)
               for s, w in zip(scored, selection.weights) if w > 0]
    calibration = ensemble_calibration(backtest, combine([s.forecast for s in scored],
                                                         selection.weights), levels=levels)
    export_path = export_ensemble(members, calibration=calibration,
                                  export_dir_base=f"{output_dir}/{EXPORT_DIR}/{BEST_EXPORTER}")
    rows.append(Row(member=ENSEMBLE, settings=" + ".join(
        f"{m.weight:.3f} {m.name}" for m in sorted(members, key=lambda m: -m.weight)),
        status=ENSEMBLE, valid_mase=selection.score, seconds=sum(row.seconds for row in rows),
        weight=1.0))
    files = write_leaderboard(output_dir, rows)
    return SearchResult(rows=rows, selection=selection, export_path=export_path,
                        leaderboard_files=files, members_trained=trained,
                        seconds=time.monotonic() - start)


def summarize(result: SearchResult) -> str:
    """The command's closing lines: the leaderboard, the ensemble against the best member and
    seasonal naive, and where the files are."""
    by_name = {row.member: row for row in result.rows}
    ensemble = by_name[ENSEMBLE]
    members = [row for row in result.rows if row.status not in (ENSEMBLE, "baseline")
               and row.valid_mase is not None]
    lines = table(result.rows)
    best = min(members, key=lambda row: row.valid_mase) if members else None
    naive = by_name.get("seasonal_naive")
    verdict = f"ensemble valid mase {ensemble.valid_mase:.4f}"
    if best is not None:
        verdict += f", best single member {best.member} {best.valid_mase:.4f}"
    if naive is not None and naive.valid_mase is not None:
        verdict += (f", seasonal naive {naive.valid_mase:.4f}: "
                    + ("the ensemble beats seasonal naive on the valid split"
                       if ensemble.valid_mase < naive.valid_mase else
                       "the ensemble does NOT beat seasonal naive on the valid split"))
    done = (f"{result.members_trained} members trained" if result.members_trained else
            f"{len(members)} member runs scored")
    lines += ["", f"{done} in {_format_secs(result.seconds)}; " + verdict,
              f"SavedModel: {result.export_path}",
              "leaderboard: " + ", ".join(result.leaderboard_files),
              "(valid figures chose the ensemble; score it on held-out data with: forecast "
              "evaluate --model_dir <this directory> --data_dir <the data> --split test)"]
    return "\n".join(lines)


# The ensemble's intervals unless --quantiles says otherwise: the 80% and 95% ones.
DEFAULT_LEVELS = "0.025,0.1,0.5,0.9,0.975"


def interval_levels(text: str) -> Tuple[float, ...]:
    """The levels of --quantiles ('' for none: a point forecast only); a ConfigError names the
    flag."""
    if not text:
        return ()
    try:
        return parse_quantiles(text)
    except ValueError as error:
        raise ConfigError(f"--quantiles: {error}") from None


# The share of the series whose valid windows must hold a look-back that the search chooses
# for itself (`default_look_backs`).
LOOK_BACK_SHARE = 0.75


def default_look_backs(histories: Sequence[int], *, n_inputs: int, season: int,
                       share: float = LOOK_BACK_SHARE) -> Tuple[int, ...]:
    """The look-backs searched when none are given: `n_inputs`, then the longest of 3 and 2
    times it that at least `share` of the series hold (`histories`: each series' longest
    look-back with a valid window, `trainer.data.series_reads.split_histories`), with one
    halfway between in whole seasons. The longer look-backs scored lower on valid than the
    first for every network on both Tourism sets and M3 monthly (docs/search.md).

    >>> default_look_backs([30] * 3 + [10], n_inputs=8, season=4)  # 24 held by 3 of 4
    (8, 16, 24)
    >>> default_look_backs([50] * 4, n_inputs=24, season=12)  # 48 held, 72 not
    (24, 36, 48)
    >>> default_look_backs([30] * 4, n_inputs=24, season=12)
    (24,)
    """
    if not len(histories):
        return (n_inputs,)
    held = lambda look_back: np.mean(np.asarray(histories) >= look_back) >= share  # noqa: E731
    longest = next((k * n_inputs for k in (3, 2) if held(k * n_inputs)), n_inputs)
    step = max(season, 1)
    seasons = (longest - n_inputs) // step
    middle = n_inputs + (seasons + 1) // 2 * step
    return tuple(sorted({n_inputs, min(middle, longest), longest}))


def data_look_backs(prepared: PreparedSeries) -> Tuple[int, ...]:
    """`default_look_backs` of the prepared data: its n_inputs and season, and the look-backs
    its series hold in the valid split; said in the log."""
    summary = prepared.summary
    n_inputs, n_outputs = int(summary["n_inputs"]), int(summary["n_outputs"])
    histories = split_histories(prepared, split="valid", n_outputs=n_outputs)
    chosen = default_look_backs(histories, n_inputs=n_inputs, season=int(summary.get("season", 1)))
    logger.info("searching look-backs %s: prepare.json's n_inputs %d, then the longest of 3 and "
                "2 times it that 3/4 of the %d series with a valid window hold (--look_backs to "
                "choose them)", ",".join(map(str, chosen)), n_inputs, len(histories))
    return chosen


def check_look_backs(look_backs: Sequence[int], *, season: int) -> None:
    """A look-back shorter than the season cannot hold the seasonal naive forecast."""
    short = [n for n in look_backs if n < season]
    if short:
        raise ConfigError(f"--look_backs {','.join(map(str, short))} shorter than the data's "
                          f"season {season}: give look-backs of at least one season")


def _settings_of_run(directory: str) -> str:
    """What a member run was: the flags of its config.json that tell runs apart."""
    saved = load_config_dict(directory) or {}
    return " ".join(f"{name}={saved[name]}" for name in RUN_SETTINGS if name in saved)


def _short_names(paths: Sequence[str]) -> List[str]:
    """The paths without their common prefix of whole folders (gs://b/job/3/checkpoints and
    gs://b/job/4/checkpoints -> 3/checkpoints and 4/checkpoints)."""
    if len(paths) < 2:
        return [path.rstrip("/").rsplit("/", 1)[-1] for path in paths]
    parts = [path.rstrip("/").split("/") for path in paths]
    common = 0
    while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return ["/".join(p[common:]) for p in parts]


def expand_member_patterns(patterns: Sequence[str]) -> List[str]:
    """The run directories that the patterns (local or gs://, with * and ?) name, sorted; a
    ConfigError names a pattern that matches nothing."""
    directories: List[str] = []
    for pattern in patterns:
        found = sorted(tf.io.gfile.glob(pattern.rstrip("/")))
        if not found:
            raise ConfigError(f"--members {pattern} matches nothing; give the run directories of "
                              "the members, e.g. gs://BUCKET/JOB/*/checkpoints for a tuning job's "
                              "trials")
        directories += [path for path in found if path not in directories]
    return directories


def ensemble_of_runs(prepared: PreparedSeries, *, run_dirs: Sequence[str], output_dir: str,
                     season: int, n_outputs: int, rounds: int, levels: Sequence[float]
                     ) -> SearchResult:
    """The ensemble of finished runs (a tuning job's trials, a search's members): each one
    with an export is scored on the valid backtest windows beside the baselines, and the
    selection, export and leaderboard are the search's own (`build_ensemble`)."""
    start = time.monotonic()
    rows: List[Row] = []
    loaded = []
    for name, directory in zip(_short_names(run_dirs), run_dirs):
        try:
            loaded.append((name, directory, load_exported_model(directory)))
        except ConfigError as error:  # no export: a trial that failed or never evaluated
            rows.append(Row(member=name, settings=_settings_of_run(directory), status="failed",
                            valid_mase=None, seconds=0.0, message=str(error)))
    if not loaded:
        raise SearchError(f"none of the {len(run_dirs)} member runs holds an export to ensemble "
                          f"({', '.join(run_dirs[:3])}...): let them train and evaluate first")
    backtest = read_backtest(prepared, n_inputs=max(model.n_inputs for _, _, model in loaded),
                             n_outputs=n_outputs, season=season)
    scored, baseline_rows = score_baselines(backtest)
    rows = baseline_rows + rows
    for name, directory, model in loaded:
        settings = _settings_of_run(directory)
        try:
            forecast = member_forecast(backtest, model)
        except ValueError as error:  # another horizon than the data's
            rows.append(Row(member=name, settings=settings, status="failed", valid_mase=None,
                            seconds=0.0, message=str(error)))
            continue
        score = backtest.score(forecast)
        scored.append(Scored(candidate=Candidate(name=name), forecast=forecast, score=score,
                             seconds=0.0, path=model.path, run_dir=directory))
        rows.append(Row(member=name, settings=settings, status=DONE, valid_mase=score,
                        seconds=0.0))
        logger.info("member %s: valid mase %.4f (%s)", name, score, settings)
    if not any(s.path for s in scored):
        raise SearchError("no member run forecasts the data's horizon: see the leaderboard's "
                          "messages")
    return build_ensemble(scored, rows, backtest=backtest, output_dir=output_dir, rounds=rounds,
                          levels=levels, trained=0, start=start)
