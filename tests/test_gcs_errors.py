"""Cloud Storage errors are one line from every command: the flag, the path, what to check.

The commands run as a user runs them, with every request to Cloud Storage sent through a proxy
on a loopback port where nothing listens (HTTPS_PROXY, which libcurl in TensorFlow and requests
in google-cloud-storage both honour): a machine without the network, in effect, on this one.
"""

import dataclasses
import os
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT, SERVICE_VARIABLES
from trainer.util.cli import build_flag_parser, flag, run_command
from trainer.util.gcs import STORAGE_ADVICE, gcs_paths_by_flag, storage_error_message

BUCKET = "gs://forecast-unreachable"
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                   "all_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture
def closed_port():
    """A loopback port bound by this test and not listening: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


COMMANDS = {
    "train": (["trainer.task", "--data_dir", f"{BUCKET}/prepared", "--output_dir", "{tmp}/run"],
              "--data_dir", f"{BUCKET}/prepared"),
    "prepare": (["trainer.prepare", "--input", f"{BUCKET}/raw.csv", "--output_dir",
                 "{tmp}/prepared"], "--input", f"{BUCKET}/raw.csv"),
    "evaluate": (["trainer.evaluate", "--model_dir", f"{BUCKET}/run", "--data_dir",
                  f"{BUCKET}/prepared"], "--model_dir", f"{BUCKET}/run"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unreachable_cloud_storage_is_one_line_naming_the_flag(command, closed_port, tmp_path):
    args, flag_name, path = COMMANDS[command]
    env = {key: value for key, value in os.environ.items()
           if key not in SERVICE_VARIABLES + PROXY_VARIABLES
           and key not in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST")}
    proxy = f"http://127.0.0.1:{closed_port}"
    env.update({"HTTPS_PROXY": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy,
                "http_proxy": proxy,
                "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test-token"})  # TensorFlow: no metadata server
    result = subprocess.run([sys.executable, "-m", *[a.format(tmp=tmp_path) for a in args]],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"error: Cloud Storage failed for {flag_name} {path}: cannot reach "
                               "https://storage.googleapis.com: Unable to connect to proxy: "
                               "Connection refused. Check the network"), lines[0]
    assert lines[0].endswith(f"{STORAGE_ADVICE} ({BUCKET})"), lines[0]


TF_MESSAGE = ("Error executing an HTTP request: libcurl code 6 meaning 'Couldn't resolve host "
              "name', error details: Could not resolve host: storage.googleapis.com\n"
              "\twhen reading metadata of gs://c/run/config.json")


def test_tensorflow_errors_name_the_flag_of_their_bucket():
    paths = {"--data_dir": ["gs://b/prepared"], "--output_dir": ["gs://c/run"]}
    error = tf.errors.FailedPreconditionError(None, None, TF_MESSAGE)
    assert storage_error_message(error, paths) == (
        "Cloud Storage failed for --output_dir gs://c/run: Could not resolve host: "
        "storage.googleapis.com (when reading metadata of gs://c/run/config.json). "
        f"{STORAGE_ADVICE} (gs://c)")
    # A bucket no flag names: the first flag's path.
    other = tf.errors.UnavailableError(None, None, "Error executing an HTTP request on gs://z/a")
    assert storage_error_message(other, paths).startswith("Cloud Storage failed for --data_dir")
    # Not Cloud Storage's: left alone (the command's own message or traceback).
    assert storage_error_message(ValueError("no"), paths) is None
    assert storage_error_message(tf.errors.NotFoundError(None, None, "gs://b/x not found"),
                                 paths) is None
    assert storage_error_message(error, {}) is None
    from google.auth.exceptions import RefreshError
    assert storage_error_message(RefreshError("invalid_grant: Bad Request"), paths) == (
        f"Cloud Storage failed for --data_dir gs://b/prepared: invalid_grant: Bad Request. "
        f"{STORAGE_ADVICE} (gs://b)")


@dataclasses.dataclass(frozen=True)
class ReadConfig:
    data_dir: str = flag("", "Where to read.")
    verbosity: str = flag("WARNING", "Log level.")


def test_run_command_prints_one_line_and_exits_1(capsys, monkeypatch):
    """What every command does with an error of Cloud Storage that TensorFlow raises."""
    monkeypatch.setattr("trainer.util.cli.check_reachable", lambda paths: None)

    def read(config):
        raise tf.errors.FailedPreconditionError(None, None, TF_MESSAGE.replace("gs://c/run",
                                                                               config.data_dir))

    parser = build_flag_parser(ReadConfig, prog="read", description="Read.")
    assert run_command(read, ["--data_dir", "gs://c/prepared"], parser=parser,
                       make_config=ReadConfig) == 1
    stderr = capsys.readouterr().err.strip().splitlines()
    assert stderr == [f"error: Cloud Storage failed for --data_dir gs://c/prepared: Could not "
                      f"resolve host: storage.googleapis.com (when reading metadata of "
                      f"gs://c/prepared/config.json). {STORAGE_ADVICE} (gs://c)"]
    # Local paths: any other error keeps its traceback.
    with pytest.raises(tf.errors.FailedPreconditionError):
        run_command(read, ["--data_dir", "local"], parser=parser, make_config=ReadConfig)


def test_gs_paths_come_by_flag_and_from_vertex_variables():
    assert gcs_paths_by_flag({"input": "raw.csv", "output_dir": "gs://b/p/"},
                             {"AIP_CHECKPOINT_DIR": "gs://b/job/checkpoints/", "HOME": "/root"}) == {
        "--output_dir": ["gs://b/p/"], "$AIP_CHECKPOINT_DIR": ["gs://b/job/checkpoints/"]}
