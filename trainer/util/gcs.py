"""Cloud Storage through google-cloud-storage: the bucket pre-flight check and parallel upload.

TensorFlow reads and writes gs:// itself (tf.io.gfile, tf.data); this module is for what its
file system cannot say clearly. Before training, `check_buckets` asks the JSON API whether
each bucket named by a flag exists and can be listed, so that a typo or a missing permission
is one line naming the flag and the bucket instead of a TensorFlow stack trace minutes later.

`upload` puts local CSV shards in a bucket in parallel (checksummed by the client library);
the command `python -m trainer.storage upload` runs it.
"""

import logging
import warnings
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from trainer.util.errors import ConfigError

# google-api-core warns on import that it will drop Python 3.11 in 2027; the TensorFlow
# versions this package needs stop at 3.11, so the warning says nothing a user can act on.
warnings.filterwarnings("ignore", message="You are using a Python version", category=FutureWarning)

logger = logging.getLogger(__name__)

UPLOAD_WORKERS = 8


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
