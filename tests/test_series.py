"""Series read for prediction: the timestamps that continue them."""

from trainer.data.series import future_timestamps, read_series


def testfuture_timestamps_continue_the_median_step(tmp_path):
    dates = tmp_path / "dates.csv"
    dates.write_text("timestamp,value\n2024-02-27,1\n2024-02-28,2\n2024-02-29,3\n")
    assert future_timestamps(read_series(str(dates))[0][0], 2) == ["2024-03-01", "2024-03-02"]
    hours = tmp_path / "hours.csv"
    hours.write_text("timestamp,value\n2024-01-01T22:00:00,1\n2024-01-01T23:00:00,2\n")
    assert future_timestamps(read_series(str(hours))[0][0], 1) == ["2024-01-02T00:00:00"]
    index = tmp_path / "index.csv"
    index.write_text("timestamp,value\n10,1\n15,2\n20,3\n")
    assert future_timestamps(read_series(str(index))[0][0], 2) == ["25", "30"]
