"""Upload local CSV shards to Cloud Storage for training, in parallel and checksummed.

    python -m trainer.storage upload data/train-*.csv gs://my-bucket/series/

The work is `trainer.util.gcs.upload`; this module is its command line.
"""

import logging
import sys
from typing import Optional, Sequence

from trainer.util.cli import FlagParser, HelpFormatter
from trainer.util.errors import ConfigError
from trainer.util.gcs import UPLOAD_WORKERS, check_reachable, storage_error_message, upload


def main(argv: Optional[Sequence[str]] = None, *, prog: str = "python -m trainer.storage") -> int:
    parser = FlagParser(
        prog=prog,
        description="Upload local CSV shards to Cloud Storage for training.",
        formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    upload_parser = commands.add_parser("upload", help="Upload files under a gs:// prefix.",
                                        formatter_class=HelpFormatter)
    upload_parser.add_argument("files", nargs="+", help="Local files to upload.")
    upload_parser.add_argument("destination", help="gs://BUCKET/PREFIX/ to upload under.")
    upload_parser.add_argument("--workers", type=int, default=UPLOAD_WORKERS,
                               help="Parallel uploads.")
    args = parser.parse_args(argv)
    if not args.destination.startswith("gs://"):
        parser.error(f"the destination must be gs://BUCKET/PREFIX/, got {args.destination!r}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    storage_paths = {"the destination": [args.destination]}
    try:
        check_reachable(storage_paths)
        urls = upload(args.files, args.destination, workers=args.workers)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # an error of Cloud Storage is one line, as in every command
        message = storage_error_message(error, storage_paths)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
    print(f"uploaded {len(urls)} files under {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
