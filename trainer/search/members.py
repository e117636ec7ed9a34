"""One candidate of the search trained as an ordinary run: `python -m trainer.task` in its own
directory, stopped by SIGTERM (a clean stop: checkpoint, exit 143) when its time is up.

Each run is a process of its own, as a user would start it, so that a candidate that crashes
or runs out of memory is a line in the leaderboard, not the end of the search, and so that a
search run again resumes each unfinished candidate where its checkpoints left it. What the
search knows of a candidate is in its directory: `search.json` (written here when the run
ends: status, seconds, exit code), the run's own metrics.json and export/best.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from trainer.model.serving import BEST_EXPORTER, EXPORT_DIR
from trainer.search.portfolio import Candidate
from trainer.util.files import write_text_atomically
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

MEMBER_FILENAME = "search.json"  # in each candidate's directory
LOG_FILENAME = "train.log"  # the run's stdout and stderr
REFIT_DIR = "refit"  # trainer.refit's default output directory, below the run's
REFIT_LOG_FILENAME = "refit.log"
DONE, STOPPED, FAILED = "done", "stopped by the time limit", "failed"
GRACE_SECS = 60  # after SIGTERM, how long a run may take to save its checkpoint and exit


@dataclasses.dataclass(frozen=True)
class MemberRun:
    """How a candidate's run ended (what search.json holds)."""

    name: str
    status: str  # DONE, STOPPED or FAILED
    seconds: float  # wall time of its runs, all attempts added up
    exit_code: int
    directory: str
    message: str = ""  # for a failure: the last line of its log

    @property
    def export_base(self) -> str:
        return f"{self.directory}/{EXPORT_DIR}/{BEST_EXPORTER}"

    def has_export(self) -> bool:
        """Whether the run exported a model (an evaluation happened before it ended)."""
        return tf.io.gfile.isdir(self.export_base) and bool(tf.io.gfile.listdir(self.export_base))

    def metrics(self) -> Optional[Dict[str, Any]]:
        """The run's metrics.json: its best evaluation on the valid split."""
        return run_metrics(self.directory)


def run_metrics(directory: str) -> Optional[Dict[str, Any]]:
    """The metrics.json of the run in `directory` (None when it has none)."""
    # Here: trainer.training.reporting's exporters subclass TensorFlow's, and the commands
    # above this module build their parsers (--help) without loading TensorFlow.
    from trainer.training.reporting import read_metrics_json

    return read_metrics_json(directory)


def read_member_run(directory: str) -> Optional[MemberRun]:
    """The search.json of a candidate's directory, or None when its run never ended."""
    path = f"{directory}/{MEMBER_FILENAME}"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return MemberRun(**json.load(handle))


def trainer_command(candidate: Candidate, *, data_dir: str, output_dir: str = "",
                    extra_flags: Sequence[str] = ()) -> List[str]:
    """The `python -m trainer.task` command line of `candidate` (without --output_dir when
    `output_dir` is empty: the trainer then follows Vertex AI's AIP_* variables)."""
    flags = [f"--{name}={value}" for name, value in candidate.flags]
    output = [f"--output_dir={output_dir}"] if output_dir else []
    return [sys.executable, "-m", "trainer.task", f"--data_dir={data_dir}", *output, *flags,
            *extra_flags]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


class Finished(NamedTuple):
    """How a command run by `run_for_at_most` ended, and what it printed."""

    exit_code: int
    timed_out: bool
    text: str


def run_for_at_most(command: Sequence[str], time_limit: float) -> Finished:
    """Run `command`, its output captured, for at most `time_limit` seconds. Then SIGTERM, the
    trainer's clean stop (it saves a checkpoint), and SIGKILL after GRACE_SECS. A stop of the
    search itself (Ctrl-C, SIGTERM, any exception) stops the command cleanly too."""
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        try:
            exit_code = process.wait(timeout=max(time_limit, 1.0))
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            process.send_signal(signal.SIGTERM)
            try:
                exit_code = process.wait(timeout=GRACE_SECS)
            except subprocess.TimeoutExpired:
                process.kill()
                exit_code = process.wait()
        except BaseException:  # the search itself was stopped: stop the run cleanly too
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=GRACE_SECS)
            raise
        log.seek(0)
        return Finished(exit_code=exit_code, timed_out=timed_out, text=log.read())


def run_member(candidate: Candidate, *, data_dir: str, directory: str, time_limit: float,
               extra_flags: Sequence[str] = ()) -> MemberRun:
    """Train `candidate` in `directory` for at most `time_limit` seconds; its MemberRun.

    A candidate already done (search.json says so) is not run again. One that was stopped
    by the time limit or failed runs again and resumes from its checkpoints.
    """
    previous = read_member_run(directory)
    if previous is not None and previous.status == DONE:
        logger.info("%s: done in an earlier search (%.0f s), not run again", candidate.name,
                    previous.seconds)
        return previous
    command = trainer_command(candidate, data_dir=data_dir, output_dir=directory,
                              extra_flags=extra_flags)
    start = time.monotonic()
    finished = run_for_at_most(command, time_limit)
    text = finished.text
    seconds = time.monotonic() - start + (previous.seconds if previous is not None else 0.0)
    tf.io.gfile.makedirs(directory)
    log_path = f"{directory}/{LOG_FILENAME}"
    if tf.io.gfile.exists(log_path):  # an earlier attempt's log first (gs:// cannot append)
        with tf.io.gfile.GFile(log_path) as handle:
            text = handle.read() + text
    write_text_atomically(log_path, text)
    if finished.timed_out:
        status, message = STOPPED, f"stopped after {time_limit:.0f} s"
    elif finished.exit_code == 0:
        status, message = DONE, ""
    else:
        status, message = FAILED, _last_line(text)
    member = MemberRun(name=candidate.name, status=status, seconds=round(seconds, 1),
                       exit_code=finished.exit_code, directory=directory, message=message)
    write_text_atomically(f"{directory}/{MEMBER_FILENAME}",
                          json.dumps(dataclasses.asdict(member), indent=2) + "\n")
    return member


def refit_member(directory: str, *, time_limit: float) -> Optional[str]:
    """Refit the run in `directory` on train and valid for its chosen steps (`python -m
    trainer.refit`, into DIRECTORY/refit) and return the refit's SavedModel, or None (with a
    warning naming the log) when the refit failed or ran out of time."""
    finished = run_for_at_most([sys.executable, "-m", "trainer.refit", f"--run_dir={directory}"],
                               time_limit)
    write_text_atomically(f"{directory}/{REFIT_LOG_FILENAME}", finished.text)
    succeeded = finished.exit_code == 0 and not finished.timed_out
    metrics = run_metrics(f"{directory}/{REFIT_DIR}") if succeeded else None
    if not metrics or not metrics.get("saved_model_path"):
        logger.warning("the refit of %s %s (%s); the ensemble keeps the run's own model", directory,
                       "ran out of time" if finished.timed_out
                       else f"failed: {_last_line(finished.text)}",
                       f"{directory}/{REFIT_LOG_FILENAME}")
        return None
    return str(metrics["saved_model_path"])
