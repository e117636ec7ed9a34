"""Cloud Storage through google-cloud-storage: the bucket pre-flight check, the one-line
errors of every command, and parallel upload.

TensorFlow reads and writes gs:// itself (tf.io.gfile, tf.data); this module is for what its
file system cannot say clearly. Before training, `check_buckets` asks the JSON API whether
each bucket named by a flag exists and can be listed, so that a typo or a missing permission
is one line naming the flag and the bucket instead of a TensorFlow stack trace minutes later.

Every command (`trainer.util.cli.run_command`) takes its gs:// paths by flag from its config
(`gcs_paths_by_flag`), checks first that Cloud Storage answers at all (`check_reachable`: one
request, bounded in time, where TensorFlow would retry for minutes), and turns any error of
Cloud Storage raised later (TensorFlow's gs:// file system, google-cloud-storage, google-auth)
into one line naming the flag, the path and what to check (`storage_error_message`).

`upload` puts local CSV shards in a bucket in parallel (checksummed by the client library);
the command `python -m trainer.storage upload` runs it.
"""

import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from trainer.util.environment import OUTPUT_DIR_VARIABLES
from trainer.util.errors import ConfigError

# google-api-core warns on import that it will drop Python 3.11 in 2027; the TensorFlow
# versions this package needs stop at 3.11, so the warning says nothing a user can act on.
warnings.filterwarnings("ignore", message="You are using a Python version", category=FutureWarning)

logger = logging.getLogger(__name__)

UPLOAD_WORKERS = 8
# Where google-cloud-storage and TensorFlow send their requests; STORAGE_EMULATOR_HOST (the
# client library's variable) replaces it, as for the client.
STORAGE_ENDPOINT = "https://storage.googleapis.com"
# The reachability check's limit to connect, and again to be answered: a dropped packet
# costs this, not TensorFlow's retries (minutes).
REACH_TIMEOUT_SECS = 10
# What to check, said by every Cloud Storage error.
STORAGE_ADVICE = ("Check the network (and any proxy), the credentials (gcloud auth "
                  "application-default login, or GOOGLE_APPLICATION_CREDENTIALS) and the bucket "
                  "name")
# Error classes of the Google client libraries and their HTTP stack, by module.
CLIENT_ERROR_MODULES = ("google.auth", "google.api_core", "google.cloud", "requests", "urllib3")
# Of TensorFlow's errors, those a gs:// file system raises for the network, the credentials or
# the bucket (a missing file has its own message where a command reads it).
TENSORFLOW_STORAGE_ERRORS = ("FailedPreconditionError", "UnavailableError", "UnauthenticatedError",
                             "PermissionDeniedError", "DeadlineExceededError", "AbortedError",
                             "UnknownError", "InternalError")


def split_gcs_path(path: str) -> Tuple[str, str]:
    """'gs://bucket/a/b' -> ('bucket', 'a/b'); a ValueError for anything else.

    >>> split_gcs_path("gs://my-bucket/data/train-*.csv")
    ('my-bucket', 'data/train-*.csv')
    """
    if not path.startswith("gs://") or not path[len("gs://"):].split("/", 1)[0]:
        raise ValueError(f"expected a gs://BUCKET/... path, got {path!r}")
    bucket, _, name = path[len("gs://"):].partition("/")
    return bucket, name


def _client():
    from google.cloud import storage  # imported here: only gs:// runs need it

    return storage.Client()


def check_buckets(paths_by_flag: Dict[str, Iterable[str]]) -> None:
    """Raise ConfigError naming the flag when a gs:// bucket does not exist or cannot be listed.

    Skipped, with a warning, when no Google credentials are configured here: TensorFlow may
    still find its own (for example a GCE metadata server), and the run then fails or not on
    its own terms.
    """
    buckets: Dict[str, str] = {}
    for flag, paths in paths_by_flag.items():
        for path in paths:
            if path.startswith("gs://"):
                buckets.setdefault(split_gcs_path(path)[0], flag)
    if not buckets:
        return
    from google.api_core import exceptions as api_exceptions  # only gs:// runs need them
    from google.auth import exceptions as auth_exceptions
    try:
        client = _client()
    except auth_exceptions.DefaultCredentialsError as error:
        logger.warning("skipping the bucket check: no Google credentials (%s)", error)
        return
    for bucket, flag in buckets.items():
        try:
            if not client.bucket(bucket).exists():
                raise ConfigError(f"bucket gs://{bucket} does not exist (from {flag}); check its "
                                  "name, or create it: gcloud storage buckets create "
                                  f"gs://{bucket}")
            next(iter(client.list_blobs(bucket, max_results=1)), None)
        except api_exceptions.Forbidden as error:
            raise ConfigError(f"no permission to read bucket gs://{bucket} (from {flag}): "
                              f"{error.message}. Grant the job's service account "
                              "roles/storage.objectAdmin on it") from error
        logger.info("bucket gs://%s is readable", bucket)


def gcs_paths_by_flag(flags: Mapping[str, Any],
                      environ: Mapping[str, str] = os.environ) -> Dict[str, List[str]]:
    """{'--flag': [gs:// paths]} of a command's flags by name (each text value, comma-separated
    lists too), and of Vertex AI's `$AIP_*` directories.

    >>> flags = {"data_dir": "gs://b/prepared", "train_data_paths": "a/*.csv, gs://c/x-*.csv",
    ...          "steps": 3}
    >>> gcs_paths_by_flag(flags, {"AIP_MODEL_DIR": "gs://d/model/"})
    {'--data_dir': ['gs://b/prepared'], '--train_data_paths': ['gs://c/x-*.csv'], '$AIP_MODEL_DIR': ['gs://d/model/']}
    """
    found: Dict[str, List[str]] = {}
    for name, value in flags.items():
        if isinstance(value, str) and "gs://" in value:
            paths = [p.strip() for p in value.split(",") if p.strip().startswith("gs://")]
            if paths:
                found["--" + name] = paths
    for name in OUTPUT_DIR_VARIABLES:
        if environ.get(name, "").startswith("gs://"):
            found["$" + name] = [environ[name]]
    return found


def storage_message(flag: str, path: str, reason: str) -> str:
    """The one line of a Cloud Storage error: the flag, its path, the reason, what to check.

    >>> storage_message("--data_dir", "gs://b/prepared", "Could not resolve host: h")[:75]
    'Cloud Storage failed for --data_dir gs://b/prepared: Could not resolve host'
    """
    bucket = "gs://" + split_gcs_path(path)[0]
    return f"Cloud Storage failed for {flag} {path}: {reason}. {STORAGE_ADVICE} ({bucket})"


def check_reachable(paths_by_flag: Mapping[str, Sequence[str]]) -> None:
    """Raise ConfigError (`storage_message`, for the first gs:// path) when Cloud Storage does
    not answer: one HTTP request through any proxy set, no retry, REACH_TIMEOUT_SECS to connect
    and to be answered. Any answer will do, an error status included: the credentials and the
    buckets are `check_buckets`' and TensorFlow's to judge. Nothing to do without gs:// paths."""
    first = next(((flag, paths[0]) for flag, paths in paths_by_flag.items() if paths), None)
    if first is None:
        return
    import requests  # google-cloud-storage's HTTP stack; only gs:// runs need it

    endpoint = os.environ.get("STORAGE_EMULATOR_HOST") or STORAGE_ENDPOINT
    try:
        requests.head(endpoint, timeout=REACH_TIMEOUT_SECS, allow_redirects=False)
    except requests.RequestException as error:
        raise ConfigError(storage_message(*first, reason=f"cannot reach {endpoint}: "
                                          + _short_reason(str(error)))) from None


def storage_error_message(error: BaseException,
                          paths_by_flag: Mapping[str, Sequence[str]]) -> Optional[str]:
    """`storage_message` for an error of Cloud Storage raised while a command uses gs:// paths
    (TensorFlow's gs:// file system, google-cloud-storage, google-auth, their HTTP stack), or
    None for any other error. The flag is the one whose bucket the error names, else the first.
    """
    if not any(paths_by_flag.values()):
        return None
    text = str(getattr(error, "message", None) or error)
    if not (_is_tensorflow_storage_error(error, text)
            or type(error).__module__.startswith(CLIENT_ERROR_MODULES)):
        return None
    named = re.search(r"gs://([^/\s'\",]+)", text)
    candidates = [(flag, path) for flag, paths in paths_by_flag.items() for path in paths]
    flag, path = next((c for c in candidates if named and split_gcs_path(c[1])[0] == named.group(1)),
                      candidates[0])
    return storage_message(flag, path, _short_reason(text))


def _is_tensorflow_storage_error(error: BaseException, text: str) -> bool:
    errors = sys.modules.get("tensorflow.python.framework.errors_impl")  # not loaded: not its
    if errors is None or not isinstance(error, errors.OpError):
        return False
    return (type(error).__name__ in TENSORFLOW_STORAGE_ERRORS
            and any(mark in text for mark in ("gs://", "HTTP request", "libcurl", "googleapis")))


def _short_reason(text: str) -> str:
    r"""The part of an error's text that says what went wrong.

    >>> _short_reason("Error executing an HTTP request: libcurl code 6 meaning 'Couldn't "
    ...               "resolve host name', error details: Could not resolve host: "
    ...               "storage.googleapis.com\n\twhen reading metadata of gs://b/x")
    'Could not resolve host: storage.googleapis.com (when reading metadata of gs://b/x)'
    >>> _short_reason("HTTPSConnectionPool(host='h', port=443): Max retries exceeded with url: / "
    ...               "(Caused by ProxyError('Unable to connect to proxy', NewConnectionError("
    ...               "'<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish "
    ...               "a new connection: [Errno 111] Connection refused')))")
    'Unable to connect to proxy: Connection refused'
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else text
    details = first.split("error details: ", 1)
    if len(details) == 2:
        when = next((line for line in lines[1:] if line.startswith("when ")), "")
        return details[1].rstrip(".") + (f" ({when})" if when else "")
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", first)
    if errno:
        proxy = "Unable to connect to proxy: " if "ProxyError" in first else ""
        return proxy + errno.group(1).strip()
    if "timed out" in first.lower():
        return "the connection timed out"
    return first if len(first) <= 300 else first[:297] + "..."


def upload(files: Sequence[str], destination: str, *, workers: int = UPLOAD_WORKERS) -> List[str]:
    """Upload local `files` under the gs:// `destination` prefix, in parallel; returns the URLs."""
    from google.cloud.storage import transfer_manager

    bucket_name, prefix = split_gcs_path(destination)
    check_buckets({"the destination": [destination]})
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    for path in files:
        if not Path(path).is_file():
            raise ConfigError(f"{path} is not a file")
    bucket = _client().bucket(bucket_name)
    results = transfer_manager.upload_many(
        [(str(path), bucket.blob(prefix + Path(path).name)) for path in files],
        max_workers=workers, worker_type=transfer_manager.THREAD, raise_exception=True)
    del results  # raise_exception=True: any failure has been raised
    return [f"gs://{bucket_name}/{prefix}{Path(path).name}" for path in files]
