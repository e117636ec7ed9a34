"""Refit a chosen run on train and valid together, for its chosen number of steps, and export it.

    python -m trainer.refit --run_dir runs/a                 # writes runs/a/refit
    forecast refit --run_dir runs/a --output_dir runs/a-refit

A run chooses its answer on the valid split: the evaluation with the lowest monitored metric,
at some global step. The valid split then holds the most recent points of every series, which
that model never learned from. A refit (AutoGluon's `refit_full`) trains the same
configuration again, from scratch, on the windows of the train and the valid split, for the
chosen number of steps, and exports its last step as the answer: the model to deploy, once
the choice is made. The test split stays out of it.

The refit is an ordinary run in its own directory (it resumes, `--overwrite` restarts it),
with every flag of the run's config.json but these: `--train_on_valid`, `--train_steps` (the
run's best global step), one checkpoint and so one evaluation at that step
(`--save_checkpoints_steps`), and no early stopping; a closed-form run's refit fits the
chosen step's ridge penalty alone (`--ridge_penalties`). Its evaluation, on the valid split it has
now trained on, describes the fit, not the forecast: judge it with `trainer.evaluate --split
test`. It writes `refit.json` beside its config.json: the run, its best step and metric.

Intervals: a run that calibrated them (`--calibrate_intervals`, `trainer.training.calibrate`)
did so on the valid windows, held out from it; the refit trains on them, so its own residuals
there would be in-sample and too small. The refit applies the run's calibration.json instead
(`--calibration_file`): offsets in units of each window's scale, from the same configuration's
held-out residuals. A run without one gives a refit without calibration.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, Dict, Optional, Sequence

from trainer.training.config import DEFAULT_CHECKPOINT_SECS, TrainerConfig, make_config
from trainer.util.cli import VERBOSITIES, build_flag_parser, flag, run_command
from trainer.util.errors import ConfigError
from trainer.util.files import write_text_atomically
from trainer.util.lazy import tf

REFIT_FILENAME = "refit.json"
# What of config.json is a flag (it also holds the job id, the directories, the covariates).
FLAG_NAMES = {field.name for field in dataclasses.fields(TrainerConfig)}


@dataclasses.dataclass(frozen=True)
class RefitConfig:
    """Flags of `python -m trainer.refit`."""

    run_dir: str = flag("", "The output directory of a finished run (local or gs://): its "
                         "config.json gives the flags, its metrics.json the chosen step.")
    output_dir: str = flag("", "Where the refit writes its checkpoints, exports and metrics.json "
                            "(empty: RUN_DIR/refit).")
    overwrite: bool = flag(False, "Delete an earlier refit in --output_dir first (never the run's "
                            "own files); without it an interrupted refit resumes.")
    verbosity: str = flag("INFO", "Log level.", choices=VERBOSITIES)

    def __post_init__(self) -> None:
        if not self.run_dir:
            raise ConfigError("give --run_dir, the output directory of the run to refit")
        if self.output_dir.rstrip("/") == self.run_dir.rstrip("/"):
            raise ConfigError(f"--output_dir {self.output_dir} is the run itself; the refit needs "
                              "a directory of its own (the default is RUN_DIR/refit)")


def refit_config(config: RefitConfig) -> Dict[str, Any]:
    """The refit's trainer config and what it refits (the run, its best step and metric)."""
    # The run wiring's modules here, not above: their hooks and exporters subclass TensorFlow's,
    # which building the parser (`--help`) does not load.
    from trainer.training.closed_form_fit import penalty_of_step
    from trainer.training.reporting import read_metrics_json
    from trainer.training.run_dir import load_config_dict

    run_dir = config.run_dir.rstrip("/")
    saved = load_config_dict(run_dir)
    if saved is None:
        raise ConfigError(f"--run_dir {run_dir} holds no config.json: give the output directory "
                          "of a run of trainer.task")
    answer = read_metrics_json(run_dir)
    if not answer or not answer.get("global_step"):
        raise ConfigError(f"--run_dir {run_dir} holds no metrics.json with an evaluated step: let "
                          "the run evaluate at least once (it chooses the step to refit for)")
    steps = int(answer["global_step"])
    flags = {key: value for key, value in saved.items() if key in FLAG_NAMES}
    if flags.get("solver") == "closed_form":  # the chosen penalty, not a new choice in-sample
        flags["ridge_penalties"] = f"{penalty_of_step(run_dir, steps)!r}"
    flags.update(output_dir=config.output_dir or f"{run_dir}/refit", overwrite=config.overwrite,
                 train_on_valid=True, train_steps=steps, save_checkpoints_steps=steps,
                 save_checkpoints_secs=DEFAULT_CHECKPOINT_SECS, early_stopping_evals=0,
                 verbosity=config.verbosity, calibration_file=run_calibration(answer))
    return {"trainer": make_config(**flags), "run_dir": run_dir, "global_step": steps,
            "monitored_metric": answer.get("monitored_metric"),
            "calibration_file": flags["calibration_file"] or None}


def run_calibration(answer: Dict[str, Any]) -> str:
    """The calibration.json behind the run's calibrated answer (its metrics.json names it), or
    empty when the run calibrated nothing (off, a point head, or skipped)."""
    path = (answer.get("calibration") or {}).get("calibration_file") or ""
    return path if path and tf.io.gfile.exists(path) else ""


def refit(config: RefitConfig) -> Dict[str, Any]:
    """Train the refit and return its answer, with what it refits."""
    from trainer.training.experiment import train_and_evaluate  # as in refit_config

    plan = refit_config(config)
    trainer: TrainerConfig = plan["trainer"]
    tf.io.gfile.makedirs(trainer.output_dir)
    record = {"run_dir": plan["run_dir"], "global_step": plan["global_step"],
              "monitored_metric": plan["monitored_metric"], "train_on": ["train", "valid"],
              "calibration_file": plan["calibration_file"]}
    write_text_atomically(f"{trainer.output_dir.rstrip('/')}/{REFIT_FILENAME}",
                          json.dumps(record, indent=2) + "\n")
    metrics = train_and_evaluate(trainer)
    return {**record, "output_dir": trainer.output_dir, "metrics": metrics}


def summarize(result: Dict[str, Any]) -> str:
    metrics = result["metrics"] or {}
    calibrated = (f"\nits intervals calibrated with {result['calibration_file']} (the run's "
                  "offsets, from valid windows it did not train on)"
                  if result.get("calibration_file") else "")
    return (f"refit of {result['run_dir']} (its best evaluation by "
            f"{result['monitored_metric']}: step {result['global_step']}) on the train and valid "
            f"splits for {result['global_step']} steps{calibrated}\nSavedModel: "
            f"{metrics.get('saved_model_path')}\n(its valid figures are in-sample now; score it "
            f"with: forecast evaluate --model_dir {result['output_dir']} --split test ...)")


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.refit") -> int:
    parser = build_flag_parser(RefitConfig, prog=prog,
                               description="Train a run's configuration again on train and valid "
                               "together, for its chosen number of steps, and export it.")
    return run_command(lambda config: summarize(refit(config)), argv, parser=parser,
                       make_config=RefitConfig)


if __name__ == "__main__":
    sys.exit(main())
