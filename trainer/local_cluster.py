"""Run a TF_CONFIG cluster of trainer processes on this machine, as the cloud would.

    python -m trainer.local_cluster --workers 2 --ps 1 -- --train_steps 3000 --output_dir /tmp/run
    ./scripts/train_local_distributed.sh --no-evaluator -- --model gru

Starts a chief, N workers, M parameter servers and optionally an evaluator, each
`python -m trainer.task TRAINER_ARGS` on 127.0.0.1 with a free port and its own TF_CONFIG,
like one machine each, all with one CLOUD_ML_JOB_ID. Each task logs to
LOG_DIR/<type>-<index>.log and gets its own hypertune metric file
(LOG_DIR/<type>-<index>.metrics, standing for each machine's /tmp). Parameter
servers never exit on their own: they are stopped once the chief, the workers and the
evaluator have finished. The exit status is non-zero when any task fails. At the end it
prints the run's answer as the evaluating task (the evaluator, else the chief) printed it: the
`done:` line, the metrics and the SavedModel's path.

No task outlives the launcher: SIGTERM, SIGINT or SIGHUP to it (a `kill`, Ctrl-C, a closed
terminal) stops every task, SIGTERM first so that the chief saves a checkpoint, SIGKILL after
a grace period, and it exits with 128 + the signal number. If the launcher itself is killed
(SIGKILL), each task gets SIGTERM from the kernel (Linux's parent-death signal).
"""

import argparse
import ctypes
import ctypes.util
import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from trainer.util.cli import FlagParser, HelpFormatter
from trainer.util.environment import JOB_ID_VARIABLE

logger = logging.getLogger(__name__)

TaskKey = Tuple[str, int]
STOP_GRACE_SECS = 10  # after SIGTERM, before SIGKILL
LAUNCHER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with_parent(parent_pid: int) -> None:
    """In a new task, before it runs: ask the kernel for a SIGTERM when the launcher dies."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:  # Linux; elsewhere the launcher's own handlers are all there is
        ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the launcher died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


class LauncherStopped(Exception):
    """The launcher got SIGTERM, SIGINT or SIGHUP: every task is being stopped."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def free_ports(count: int) -> List[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclasses.dataclass
class Task:
    task_type: str
    index: int
    log_path: Path
    metric_path: Path
    process: Optional[subprocess.Popen] = None
    starts: int = 0

    @property
    def name(self) -> str:
        return f"{self.task_type}-{self.index}"


class LocalCluster:
    """Processes of one training cluster on 127.0.0.1; start, kill, restart and wait for them."""

    def __init__(self, *, trainer_args: Sequence[str], workers: int = 2, ps: int = 1,
                 evaluator: bool = True, log_dir: Path, env: Optional[Dict[str, str]] = None,
                 python: str = sys.executable):
        self.trainer_args = list(trainer_args)
        self.log_dir = Path(log_dir)
        self.env = dict(os.environ if env is None else env)
        # One job id for every task and every restart, as the cloud sets it: it lets a
        # restarted chief with --overwrite resume instead of deleting its own checkpoints.
        self.env.setdefault(JOB_ID_VARIABLE, f"local_cluster_{time.strftime('%Y%m%d_%H%M%S')}_"
                                             f"{os.getpid()}")
        self.python = python
        roles = [("chief", 1), ("worker", workers), ("ps", ps), ("evaluator", int(evaluator))]
        ports = iter(free_ports(sum(count for _, count in roles)))
        self.cluster: Dict[str, List[str]] = {
            role: [f"127.0.0.1:{next(ports)}" for _ in range(count)] for role, count in roles if count}
        self.tasks: Dict[TaskKey, Task] = {
            (role, index): Task(role, index, self.log_dir / f"{role}-{index}.log",
                                self.log_dir / f"{role}-{index}.metrics")
            for role, addresses in self.cluster.items() for index in range(len(addresses))}

    def tf_config(self, task_type: str, index: int) -> str:
        """TF_CONFIG of one task. The evaluator is listed so every task knows there is one;
        the trainer takes it out of the training cluster before the Estimator sees it."""
        return json.dumps({"cluster": self.cluster, "task": {"type": task_type, "index": index}})

    def start(self) -> None:
        """Start every task: parameter servers first, then chief, workers and evaluator."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        order = {"ps": 0, "chief": 1, "worker": 2, "evaluator": 3}
        for key in sorted(self.tasks, key=lambda key: (order[key[0]], key[1])):
            self.start_task(*key)

    def start_task(self, task_type: str, index: int) -> Task:
        """(Re)start one task, appending to its log, as the cloud restarts a failed machine."""
        task = self.tasks[(task_type, index)]
        env = {**self.env, "TF_CONFIG": self.tf_config(task_type, index),
               "CLOUD_ML_HP_METRIC_FILE": str(task.metric_path), "PYTHONUNBUFFERED": "1"}
        with open(task.log_path, "a") as log:
            log.write(f"=== {task.name} start {task.starts + 1} at {time.strftime('%H:%M:%S')} ===\n")
            log.flush()
            launcher = os.getpid()
            task.process = subprocess.Popen(
                [self.python, "-m", "trainer.task", *self.trainer_args], env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=lambda: _stop_with_parent(launcher))
        task.starts += 1
        return task

    def kill(self, task_type: str, index: int, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to one task (default: kill -9) and wait for it; returns its exit code."""
        task = self.tasks[(task_type, index)]
        assert task.process is not None, f"{task.name} was never started"
        if task.process.poll() is None:
            task.process.send_signal(sig)
        return task.process.wait()

    def returncodes(self) -> Dict[str, Optional[int]]:
        return {task.name: task.process.poll() if task.process else None
                for task in self.tasks.values()}

    def stop(self) -> None:
        """Stop every task still running: SIGTERM to the chief, workers and evaluator first (the
        chief saves a checkpoint, which needs the parameter servers), then to the parameter
        servers; SIGKILL to any task still running after `STOP_GRACE_SECS`."""
        deadline = time.time() + STOP_GRACE_SECS
        for group in ([t for t in self.tasks.values() if t.task_type != "ps"],
                      [t for t in self.tasks.values() if t.task_type == "ps"]):
            running = [t.process for t in group if t.process and t.process.poll() is None]
            for process in running:
                process.terminate()
            for process in running:
                try:
                    process.wait(timeout=max(deadline - time.time(), 0.1))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def wait(self, timeout_secs: Optional[float] = None, poll_secs: float = 0.5) -> Dict[str, int]:
        """Wait for chief, workers and evaluator; then stop the parameter servers.

        A failed task stops the whole cluster. Returns {task name: exit code}; the parameter
        servers, stopped on purpose, count as 0. Raises TimeoutError (after stopping every
        task) when `timeout_secs` pass first.
        """
        deadline = None if not timeout_secs else time.time() + timeout_secs
        finishing = [t for t in self.tasks.values() if t.task_type != "ps"]
        try:
            while True:
                codes = {t.name: t.process.poll() for t in finishing}
                failed = {name: code for name, code in codes.items() if code not in (None, 0)}
                if failed or all(code == 0 for code in codes.values()):
                    break
                if deadline is not None and time.time() > deadline:
                    raise TimeoutError(f"the cluster did not finish within {timeout_secs:.0f} s; "
                                       f"still running: {[n for n, c in codes.items() if c is None]}")
                time.sleep(poll_secs)
        finally:
            self.stop()
        results = {t.name: t.process.returncode for t in finishing}
        results.update({t.name: 0 for t in self.tasks.values() if t.task_type == "ps"})
        return results


def result_lines(log_path: Path) -> List[str]:
    """The closing lines that `python -m trainer.task` printed into a task's log: from its last
    `done:` line (the run's answer: the metrics and the SavedModel) to the end."""
    lines = log_path.read_text().splitlines() if log_path.exists() else []
    starts = [index for index, line in enumerate(lines) if line.startswith("done: ")]
    return lines[starts[-1]:] if starts else []


def build_parser(prog: str = "python -m trainer.local_cluster") -> argparse.ArgumentParser:
    parser = FlagParser(
        prog=prog,
        description="Run chief, workers, parameter servers and an evaluator of the trainer on "
        "127.0.0.1, each with its own TF_CONFIG. Arguments after -- go to every "
        "python -m trainer.task.",
        formatter_class=HelpFormatter, allow_abbrev=False)
    parser.add_argument("--workers", type=int, default=2, help="Number of workers besides the chief.")
    parser.add_argument("--ps", type=int, default=1, help="Number of parameter servers.")
    parser.add_argument("--evaluator", action=argparse.BooleanOptionalAction, default=True,
                        help="Run an evaluator task (without one the chief evaluates once at the end).")
    parser.add_argument("--log_dir", default="",
                        help="Directory for the task logs; default: a new temporary directory.")
    parser.add_argument("--timeout_secs", type=float, default=0,
                        help="Stop the cluster and fail after this many seconds (0: no limit).")
    return parser


def main(argv: Optional[Sequence[str]] = None, *,
         prog: str = "python -m trainer.local_cluster") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    trainer_args = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = build_parser(prog)
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.workers < 0 or args.ps < 0:
        parser.error(f"--workers and --ps must be >= 0, got {args.workers} and {args.ps}")
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="trainer-cluster-"))
    cluster = LocalCluster(trainer_args=trainer_args, workers=args.workers, ps=args.ps,
                           evaluator=args.evaluator, log_dir=log_dir)
    def on_signal(signum: int, frame: object) -> None:
        for other in LAUNCHER_SIGNALS:  # a second signal must not cut the stopping short
            signal.signal(other, signal.SIG_IGN)
        raise LauncherStopped(signum)

    for signum in LAUNCHER_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        cluster.start()
        for task in cluster.tasks.values():
            print(f"{task.name:12} {cluster.cluster[task.task_type][task.index]:16} "
                  f"pid {task.process.pid:<8} log: {task.log_path}", flush=True)
        codes = cluster.wait(timeout_secs=args.timeout_secs or None)
    except TimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 124
    except LauncherStopped as stopped:
        cluster.stop()  # wait() stops them too; this covers a signal during start()
        print(f"stopped by {stopped}: every task stopped (SIGTERM, then SIGKILL after "
              f"{STOP_GRACE_SECS} s); logs in {log_dir}", file=sys.stderr)
        return 128 + stopped.signum
    failed = {name: code for name, code in codes.items() if code != 0}
    for name, code in failed.items():
        log_path = log_dir / f"{name}.log"
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        print(f"error: {name} exited with {code}; the end of {log_path}:\n{tail}", file=sys.stderr)
    if not failed:
        print(f"cluster finished: {', '.join(codes)}; logs in {log_dir}")
        # The answer, as the process that evaluated printed it (the chief, without an evaluator).
        evaluated = cluster.tasks[("evaluator", 0) if args.evaluator else ("chief", 0)]
        lines = result_lines(evaluated.log_path)
        print("\n".join(lines) if lines else f"no result in {evaluated.log_path}: it printed no "
              "'done:' line (see its end)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
