"""write_text_atomically: a reader in another process never sees a half-written file."""

import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from trainer.util.files import write_text_atomically

VERSIONS = 300
SIZE = 200_000  # characters per version: long enough that a plain write is seen half done


def test_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "config.json")
    write_text_atomically(path, "first\n")
    write_text_atomically(path, "second\n")
    assert (tmp_path / "config.json").read_text() == "second\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        write_text_atomically(str(path), None)  # GFile.write refuses None
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_concurrent_reader_sees_only_whole_versions(tmp_path):
    """The chief writes config.json while a worker starting beside it reads it (a CI failure)."""
    path = tmp_path / "config.json"
    write_text_atomically(str(path), "0" * SIZE)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from trainer.util.files import write_text_atomically
        for version in range(1, {VERSIONS}):
            write_text_atomically({str(path)!r}, str(version % 10) * {SIZE})
    """)], cwd=REPO_ROOT)
    reads = 0
    try:
        while writer.poll() is None:
            with tf.io.gfile.GFile(str(path), "r") as handle:
                text = handle.read()
            assert len(text) == SIZE and text == text[0] * SIZE, (
                f"read {len(text)} characters, {len(set(text))} distinct: a partial write")
            reads += 1
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == 0
    assert reads > 10  # the reader really overlapped the writer
