"""The row format: its writer, its one checker in every wording, files checked before training,
bad rows found in the pipeline, and rows read for evaluation and prediction."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import N_INPUTS, N_OUTPUTS, write_rows
from trainer.data.pipeline import make_input_fn
from trainer.data.schema import (
    check_files,
    describe_row_problem,
    expand_file_patterns,
    find_first_bad_row,
    format_rows,
    parse_row,
    read_rows,
)
from trainer.util.errors import DataError

BATCH = 5  # != N_INPUTS != N_OUTPUTS
MODEL_INPUTS, MODEL_OUTPUTS = 4, 2  # the model that read_rows is told of


def make_fn(files, *, training, **kwargs):
    return make_input_fn(files=files, training=training, batch_size=BATCH, n_inputs=N_INPUTS,
                         n_outputs=N_OUTPUTS, **kwargs)


def test_written_rows_are_read_back_by_every_reader(tmp_path):
    values = np.array([[0.1234567, -2.0, 3.5], [1e-7, 4.25, -0.5]])
    exact = tmp_path / "exact.csv"
    exact.write_text(format_rows(values))
    rounded = tmp_path / "rounded.csv"
    rounded.write_text(format_rows(values, decimals=3))
    assert rounded.read_text() == "0.123,-2.000,3.500\n0.000,4.250,-0.500\n"
    for path, expected in ((exact, values), (rounded, np.round(values, 3))):
        data = read_rows(str(path), n_inputs=2, n_outputs=1, flag="--rows", model_path="m",
                         allow_inputs_only=False)
        np.testing.assert_array_equal(np.hstack([data["inputs"], data["actual"]]), expected)
        check_files([str(path)], n_inputs=2, n_outputs=1)
        assert find_first_bad_row([str(path)], n_inputs=2, n_outputs=1) is None
        for line in path.read_text().splitlines():
            assert parse_row(line, widths=[3])[1] is None


def test_patterns_expand_in_order_without_duplicates(tiny_data):
    files = expand_file_patterns([tiny_data["train_pattern"], tiny_data["train_files"][0]],
                                 flag="--train_data_paths")
    assert files == tiny_data["train_files"]


def test_pattern_matching_nothing_is_named(tmp_path):
    pattern = str(tmp_path / "nope-*.csv")
    with pytest.raises(DataError) as error:
        expand_file_patterns([pattern], flag="--eval_data_paths")
    assert str(error.value).startswith(f"--eval_data_paths: pattern {pattern!r} matches no file")


@pytest.mark.parametrize("line, problem", [
    ("1,2,3", None),
    (" 1.5e-3 ,-2,3\n", None),
    ("1,2", "has 2 values, expected 3 (--n_inputs 2 + --n_outputs 1)"),
    ("1,2,3,4", "has 4 values, expected 3"),
    ("1,abc,3", "value 2 is 'abc', not a number"),
    ("1,,3", "value 2 is '', not a number"),
    ("1,nan,3", "value 2 is 'nan'; NaN and infinity are not allowed"),
    ("1,2,-inf", "value 3 is '-inf'; NaN and infinity are not allowed"),
    ("\n", "is empty"),
])
def test_describe_row_problem(line, problem):
    found = describe_row_problem(line, n_inputs=2, n_outputs=1)
    assert found == problem if problem is None else problem in found


def test_empty_file_is_named(tiny_data):
    empty = tiny_data["dir"] / "train-9.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=f"{empty} is empty"):
        check_files([*tiny_data["train_files"], str(empty)], n_inputs=N_INPUTS, n_outputs=N_OUTPUTS)


def test_first_row_shape_mismatch_names_file_and_counts(tiny_data):
    path = tiny_data["train_files"][1]
    with pytest.raises(DataError) as error:
        check_files(tiny_data["train_files"], n_inputs=N_INPUTS + 1, n_outputs=N_OUTPUTS)
    assert str(error.value).startswith(
        f"row 1 of {tiny_data['train_files'][0]} has 10 values, expected 11 "
        "(--n_inputs 8 + --n_outputs 3)")
    assert path not in str(error.value)


def test_header_row_is_rejected(tmp_path):
    path = tmp_path / "with-header.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="row 1 of .*with-header.csv value 1 is 'a', not a number"):
        check_files([str(path)], n_inputs=2, n_outputs=1)


def test_directory_is_not_a_data_file(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        check_files([str(tmp_path)], n_inputs=2, n_outputs=1)


def test_bad_row_deep_in_a_file_fails_the_pipeline_and_is_found(tiny_data):
    values = np.arange(30 * 10, dtype=np.float32).reshape(30, 10)
    path = write_rows(tiny_data["dir"] / "eval-bad.csv", values)
    lines = path.read_text().splitlines()
    lines[16] = lines[16].replace(",", ",x", 1)
    path.write_text("\n".join(lines) + "\n")
    dataset = make_fn([str(path)], training=False)()
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(dataset)
    files = [*tiny_data["eval_files"], str(path)]
    assert find_first_bad_row(files, n_inputs=N_INPUTS, n_outputs=N_OUTPUTS) == (
        f"row 17 of {path} value 2 is 'x161.00000', not a number")
    assert find_first_bad_row(tiny_data["eval_files"], n_inputs=N_INPUTS, n_outputs=N_OUTPUTS) is None


def test_nan_in_the_data_fails_the_pipeline(tmp_path):
    values = np.ones((12, 10), dtype=np.float32)
    values[7, 9] = np.nan
    path = write_rows(tmp_path / "nan.csv", values)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or inf"):
        list(make_fn([str(path)], training=False)())


def read(tmp_path, text: str, *, allow_inputs_only=True):
    path = tmp_path / "rows.csv"
    path.write_text(text)
    return read_rows(str(path), n_inputs=MODEL_INPUTS, n_outputs=MODEL_OUTPUTS, flag="--rows",
                     model_path="m/1", allow_inputs_only=allow_inputs_only), str(path)


def test_rows_with_targets_and_inputs_only(tmp_path):
    data, _ = read(tmp_path, "1,2,3,4,5,6\n7,8,9,10,11,12\n")
    np.testing.assert_array_equal(data["inputs"], [[1, 2, 3, 4], [7, 8, 9, 10]])
    np.testing.assert_array_equal(data["actual"], [[5, 6], [11, 12]])
    data, _ = read(tmp_path, "1,2,3,4\n")
    assert data["actual"] is None and data["inputs"].shape == (1, MODEL_INPUTS)


def test_rows_of_mixed_or_wrong_width_are_named(tmp_path):
    with pytest.raises(DataError, match=r"row 2 of .*rows.csv has 4 values, expected 6: the model at m/1"):
        read(tmp_path, "1,2,3,4,5,6\n1,2,3,4\n")
    with pytest.raises(DataError, match=r"row 1 of .*rows.csv has 4 values, expected 6: .* reads "
                                         r"n_inputs 4 and forecasts n_outputs 2"):
        read(tmp_path, "1,2,3,4\n", allow_inputs_only=False)
    with pytest.raises(DataError, match=r"row 1 of .*rows.csv: 'x' is not a number"):
        read(tmp_path, "1,2,x,4\n")
