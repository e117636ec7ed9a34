"""Writing files that other processes may read at the same moment (local or gs://)."""

from __future__ import annotations

import os
import uuid

from trainer.util.lazy import tf


def write_text_atomically(path: str, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename.

    A reader in another process (a worker reading the chief's config.json, the tuning service
    reading metrics.json) sees the old file or the new one, never a half-written one. The
    temporary name is unique per writer, so two writers never share a temporary file.
    """
    temporary = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with tf.io.gfile.GFile(temporary, "w") as handle:
            handle.write(text)
        tf.io.gfile.rename(temporary, path, overwrite=True)
    except BaseException:
        if tf.io.gfile.exists(temporary):  # the rename did not happen: no stray file left
            tf.io.gfile.remove(temporary)
        raise
