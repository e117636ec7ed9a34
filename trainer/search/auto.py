"""The model search of `forecast auto`: train the portfolio's candidates until the time limit,
score each on the valid split's backtest windows, select an ensemble greedily and export it
as one SavedModel.

    RUN/members/NAME/          one ordinary run per candidate (resumes; search.json, train.log)
    RUN/export/best/TIMESTAMP  the ensemble's SavedModel: what evaluate, predict and deploy take
    RUN/leaderboard.csv, .json every member, the baselines and the ensemble

The search is judged by the valid split alone; the test split stays out of it, for
`forecast evaluate --model_dir RUN --split test`.
"""

import dataclasses
import fnmatch
import logging
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from trainer.data.prepared import PreparedSeries
from trainer.data.schema import FEATURE_KEY
from trainer.model.calibration import CALIBRATION_MIN_WINDOWS, Calibration, fit_calibration
from trainer.model.ensemble import SAVED_MODEL_MEMBER, Member, export_ensemble
from trainer.model.serving import BEST_EXPORTER, EXPORT_DIR, load_exported_model
from trainer.search.backtest import (
    Backtest,
    baseline_forecast,
    member_forecast,
    read_backtest,
)
from trainer.search.leaderboard import Row, table, write_leaderboard
from trainer.search.members import DONE, MemberRun, run_member
from trainer.search.portfolio import SEASONAL_NAIVE, Candidate, portfolio
from trainer.search.selection import Selection, combine, greedy_selection
from trainer.util.errors import ConfigError, TrainerError

logger = logging.getLogger(__name__)

MEMBERS_DIR = "members"
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


@dataclasses.dataclass
class Scored:
    """A candidate with a forecast of the backtest windows."""

    candidate: Candidate
    forecast: np.ndarray
    score: float
    seconds: float
    path: str = ""  # its SavedModel, for a trained member


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


def candidates_of(plan: SearchPlan) -> List[Candidate]:
    """The portfolio of the plan: the candidates --include names, cut to --max_candidates."""
    candidates = portfolio(look_backs=plan.look_backs, seeds=plan.seeds)
    if plan.include:
        candidates = [c for c in candidates
                      if any(fnmatch.fnmatchcase(c.name, pattern) for pattern in plan.include)]
        if not candidates:
            raise ConfigError(f"--include {','.join(plan.include)} matches no candidate; the "
                              "names are like " + ", ".join(c.name for c in portfolio(
                                  look_backs=plan.look_backs, seeds=plan.seeds)[::9]))
    return candidates[:plan.max_candidates] if plan.max_candidates else candidates


def _score_member(backtest: Backtest, member: MemberRun, candidate: Candidate) -> Optional[Scored]:
    if not member.has_export():
        return None
    exported = load_exported_model(member.directory)
    forecast = member_forecast(backtest, exported)
    return Scored(candidate=candidate, forecast=forecast, score=backtest.score(forecast),
                  seconds=member.seconds, path=exported.path)


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
    backtest = read_backtest(plan.prepared, n_inputs=max(plan.look_backs), n_outputs=plan.n_outputs,
                             season=plan.season)
    logger.info("the search scores every candidate on %d backtest windows of the valid split "
                "(look-back %d for all, the shorter members reading its end), by MASE per series",
                backtest.windows, backtest.n_inputs)
    candidates = candidates_of(plan)
    scored: List[Scored] = []
    rows: List[Row] = []
    trained = 0
    for number, candidate in enumerate(candidates, 1):
        left = deadline - plan.reserve - time.monotonic()
        if candidate.baseline:
            forecast = baseline_forecast(backtest, candidate.baseline)
            scored.append(Scored(candidate=candidate, forecast=forecast,
                                 score=backtest.score(forecast), seconds=0.0))
            rows.append(Row(member=candidate.name, settings=candidate.describe(),
                            status="baseline", valid_mase=scored[-1].score, seconds=0.0))
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
    trained_members = [index for index, s in enumerate(scored) if s.path]
    if not trained_members:
        raise SearchError(f"no candidate trained and evaluated within --time_limit "
                          f"{plan.time_limit:.0f} s (see {plan.output_dir}/{MEMBERS_DIR}/*/train.log);"
                          " give the search more time, or fewer trainer steps with --trainer_flags")
    # The export needs one trained member (it sets the signature and the assets).
    selection = greedy_selection(np.stack([s.forecast for s in scored]),
                                 targets=backtest.scored.labels, series=backtest.scored.series,
                                 scales=backtest.scored.scales.mae_season,
                                 rounds=plan.ensemble_rounds, required=trained_members)
    weights: Dict[str, float] = {s.candidate.name: float(w)
                                 for s, w in zip(scored, selection.weights)}
    rows = [dataclasses.replace(row, weight=weights.get(row.member, 0.0)) for row in rows]
    members = [ensemble_member(s, weight=float(w), season=plan.season)
               for s, w in zip(scored, selection.weights) if w > 0]
    calibration = ensemble_calibration(backtest, combine([s.forecast for s in scored],
                                                         selection.weights),
                                       levels=plan.levels)
    export_path = export_ensemble(members, calibration=calibration,
                                  export_dir_base=f"{plan.output_dir}/{EXPORT_DIR}/{BEST_EXPORTER}")
    rows.append(Row(member=ENSEMBLE, settings=" + ".join(
        f"{m.weight:.3f} {m.name}" for m in sorted(members, key=lambda m: -m.weight)),
        status=ENSEMBLE, valid_mase=selection.score, seconds=sum(row.seconds for row in rows),
        weight=1.0))
    files = write_leaderboard(plan.output_dir, rows)
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
    lines += ["", f"{result.members_trained} members trained in {_format_secs(result.seconds)}; "
              + verdict, f"SavedModel: {result.export_path}",
              "leaderboard: " + ", ".join(result.leaderboard_files),
              "(valid figures chose the ensemble; score it on held-out data with: forecast "
              "evaluate --model_dir <this directory> --data_dir <the data> --split test)"]
    return "\n".join(lines)


def check_look_backs(look_backs: Sequence[int], *, season: int) -> None:
    """A look-back shorter than the season cannot hold the seasonal naive forecast."""
    short = [n for n in look_backs if n < season]
    if short:
        raise ConfigError(f"--look_backs {','.join(map(str, short))} shorter than the data's "
                          f"season {season}: give look-backs of at least one season")
