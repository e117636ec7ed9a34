"""google-cloud-storage commands for the GCS test harness (run inside its namespace).

    python -m tests.gcs_tool mkbucket NAME
    python -m tests.gcs_tool upload LOCAL_FILE... gs://BUCKET/PREFIX/
    python -m tests.gcs_tool ls gs://BUCKET/PREFIX
"""

import sys
from pathlib import Path

from google.cloud import storage


def split(url: str):
    bucket, _, name = url[len("gs://"):].partition("/")
    return bucket, name


def main(argv) -> int:
    client = storage.Client()  # STORAGE_EMULATOR_HOST: the test server, anonymous
    command, args = argv[0], argv[1:]
    if command == "mkbucket":
        client.create_bucket(args[0])
    elif command == "upload":
        bucket_name, prefix = split(args[-1])
        bucket = client.bucket(bucket_name)
        for local in args[:-1]:
            bucket.blob(prefix + Path(local).name).upload_from_filename(local)
    elif command == "ls":
        bucket_name, prefix = split(args[0])
        for blob in client.list_blobs(bucket_name, prefix=prefix):
            print(f"gs://{bucket_name}/{blob.name} {blob.size}")
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
