"""gs:// end to end against a real GCS server on this machine (tests/gcs_harness.py).

TensorFlow's built-in gs:// file system and google-cloud-storage talk HTTPS to
storage.googleapis.com, which a private network namespace maps to the server on 127.0.0.1.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import N_INPUTS, N_OUTPUTS, tiny_trainer_flags
from tests.gcs_harness import GcsServer, namespaces_unavailable

pytestmark = pytest.mark.gcs


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
    reason = namespaces_unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the GCS tests must run in CI, but {reason}")
        pytest.skip(f"no private network namespace for the GCS server: {reason}")
    server = GcsServer(tmp_path_factory.mktemp("gcs"))
    server.start()
    yield server
    server.stop()
    # The server runs in unshare's forked child: it must not outlive the tests.
    deadline = time.time() + 10
    while server_alive(server.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not server_alive(server.pid), f"the GCS server (pid {server.pid}) outlived stop()"


def server_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def bucket(gcs, request) -> str:
    """A new bucket per test, holding the tiny data set under data/."""
    name = "b-" + request.node.name.replace("_", "-").lower()[:50].strip("-")
    gcs.tool("mkbucket", name)
    return name


def upload_tiny_data(gcs, tiny_data, bucket: str) -> dict:
    gcs.tool("upload", *tiny_data["train_files"], *tiny_data["eval_files"], f"gs://{bucket}/data/")
    return {"train_pattern": f"gs://{bucket}/data/train-*.csv",
            "eval_pattern": f"gs://{bucket}/data/eval-*.csv"}


def gcs_json(gcs, path: str) -> dict:
    result = gcs.python(f"import tensorflow as tf; print(tf.io.gfile.GFile({path!r}).read())")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def listing(gcs, prefix: str) -> dict:
    """{object name below prefix: size} through google-cloud-storage."""
    rows = [line.split() for line in gcs.tool("ls", prefix).splitlines()]
    return {url[len(prefix):]: int(size) for url, size in rows}


def train(gcs, flags, **kwargs):
    return gcs.run([sys.executable, "-m", "trainer.task", *flags], **kwargs)


def test_train_export_and_resume_on_gcs(gcs, bucket, tiny_data, tmp_path):
    data = upload_tiny_data(gcs, tiny_data, bucket)
    output = f"gs://{bucket}/runs/one"
    flags = tiny_trainer_flags(data, output, steps=100)
    flags[flags.index("--save_checkpoints_steps") + 1] = "50"

    first = train(gcs, flags)
    assert first.returncode == 0, first.stderr[-3000:]
    metrics = gcs_json(gcs, f"{output}/metrics.json")
    assert metrics["last_global_step"] == 100
    assert metrics["saved_model_path"].startswith(f"{output}/export/best/")
    objects = listing(gcs, f"gs://{bucket}/runs/one/")
    assert {"checkpoint", "config.json", "metrics.json", "model.ckpt-100.index"} <= set(objects)
    assert any(name.startswith("export/best/") for name in objects)
    assert not [name for name in objects if ".tmp-" in name]  # written by rename, none left

    flags[flags.index("--train_steps") + 1] = "150"
    second = train(gcs, flags)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming from the checkpoint at step 100 (target 150)" in second.stderr
    resumed = gcs_json(gcs, f"{output}/metrics.json")
    assert resumed["last_global_step"] == 150

    rows = np.concatenate([np.loadtxt(p, delimiter=",", dtype=np.float32)
                           for p in tiny_data["eval_files"]])
    np.save(tmp_path / "rows.npy", rows)
    served = gcs.python(
        "import numpy as np, tensorflow as tf\n"
        f"rows = np.load({str(tmp_path / 'rows.npy')!r})\n"
        f"serve = tf.saved_model.load({resumed['saved_model_path']!r}).signatures['serving_default']\n"
        f"out = serve(rawdata=tf.constant(rows[:, :{N_INPUTS}]))['predicted'].numpy()\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, out)\n")
    assert served.returncode == 0, served.stderr[-3000:]
    forecast = np.load(tmp_path / "out.npy")
    assert forecast.shape == (46, N_OUTPUTS)
    actual = rows[:, N_INPUTS:]
    model_rmse = float(np.sqrt(np.mean((forecast - actual) ** 2)))
    assert model_rmse == pytest.approx(resumed["rmse"], rel=1e-4)


def test_synthetic_data_and_tuning_trial_on_gcs(gcs, bucket):
    output = f"gs://{bucket}/tuning"
    result = train(gcs, ["--output_dir", output, "--train_steps", "30", "--hidden_units", "4",
                         "--save_checkpoints_steps", "30"],
                   env={"CLOUD_ML_TRIAL_ID": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    objects = listing(gcs, f"gs://{bucket}/tuning/")
    objects.pop("", None)  # the directory marker of tuning/ itself
    assert objects and all(name.startswith("trial_3/") for name in objects), sorted(objects)
    shards = sorted(n for n in objects if n.startswith("trial_3/data/") and n.endswith(".csv"))
    assert len(shards) == 10 and all(objects[n] > 0 for n in shards)
    assert gcs_json(gcs, f"{output}/trial_3/metrics.json")["last_global_step"] == 30


def test_missing_bucket_is_named_before_training(gcs, tiny_data):
    flags = tiny_trainer_flags({"train_pattern": "gs://no-such-bucket/data/train-*.csv",
                                "eval_pattern": "gs://no-such-bucket/data/eval-*.csv"},
                               "gs://no-such-bucket/run", steps=10)
    result = train(gcs, flags)
    assert result.returncode == 1
    assert "error: bucket gs://no-such-bucket does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_bucket_is_named_before_training(gcs, bucket, tiny_data):
    data = upload_tiny_data(gcs, tiny_data, bucket)
    gcs.set_faults([{"method": "GET", "path_contains": f"/b/{bucket}/o?", "every": 1,
                     "action": "403"}])
    try:
        result = train(gcs, tiny_trainer_flags(data, f"gs://{bucket}/run", steps=10))
    finally:
        gcs.set_faults([])
    assert result.returncode == 1
    assert f"error: no permission to read bucket gs://{bucket} (from --output_dir)" in result.stderr
    assert "roles/storage.objectAdmin" in result.stderr


def test_upload_tool_puts_local_shards_in_a_bucket(gcs, bucket, tiny_data):
    result = gcs.run([sys.executable, "-m", "trainer.storage", "upload", *tiny_data["train_files"],
                      f"gs://{bucket}/series"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"uploaded 3 files under gs://{bucket}/series" in result.stdout
    sizes = {Path(p).name: Path(p).stat().st_size for p in tiny_data["train_files"]}
    assert listing(gcs, f"gs://{bucket}/series/") == sizes
    missing = gcs.run([sys.executable, "-m", "trainer.storage", "upload",
                       tiny_data["train_files"][0], "gs://no-such-bucket/x/"])
    assert missing.returncode == 1
    assert "error: bucket gs://no-such-bucket does not exist (from the destination)" in missing.stderr


def test_training_survives_503s_and_dropped_connections(gcs, bucket, tiny_data):
    data = upload_tiny_data(gcs, tiny_data, bucket)
    output = f"gs://{bucket}/flaky"
    flags = tiny_trainer_flags(data, output, steps=100)
    flags[flags.index("--save_checkpoints_steps") + 1] = "25"
    gcs.set_faults([
        # reads of the data shards and of checkpoints
        {"method": "GET", "path_contains": "/data%2F", "every": 3, "action": "503", "limit": 6},
        {"method": "GET", "path_contains": "/data%2F", "every": 5, "action": "drop", "limit": 4},
        # checkpoint writes (resumable uploads: POST starts one, PUT sends the bytes)
        {"method": "PUT", "path_contains": "model.ckpt", "every": 3, "action": "503", "limit": 6},
        {"method": "POST", "path_contains": "model.ckpt", "every": 4, "action": "drop", "limit": 4},
    ])
    try:
        result = train(gcs, flags)
    finally:
        gcs.set_faults([])
    injected = gcs.injected()
    errors = [line for line in result.stderr.splitlines() if "Error" in line or "error" in line]
    assert result.returncode == 0, "\n".join(errors[-20:])
    kinds = {(line.split()[0], line.split()[1]) for line in injected}
    assert {("503", "GET"), ("drop", "GET"), ("503", "PUT"), ("drop", "POST")} <= kinds, injected
    assert gcs_json(gcs, f"{output}/metrics.json")["last_global_step"] == 100
    # Every checkpoint left behind loads.
    check = gcs.python(
        "import tensorflow as tf\n"
        f"state = tf.train.get_checkpoint_state({output!r})\n"
        "for path in state.all_model_checkpoint_paths:\n"
        "    reader = tf.train.load_checkpoint(path)\n"
        "    print(path.rsplit('-', 1)[1], reader.get_tensor('global_step'))\n")
    assert check.returncode == 0, check.stderr[-3000:]
    loaded = [line.split() for line in check.stdout.splitlines()]
    assert loaded and all(step == value for step, value in loaded)
    assert loaded[-1][0] == "100"


def test_prepare_to_gcs_then_train_and_evaluate_from_the_series_there(gcs, bucket, tmp_path):
    from tests.test_covariates import write_covariate_csv

    raw = write_covariate_csv(tmp_path / "raw.csv", series=3, length=120)
    prepared = f"gs://{bucket}/prepared"
    result = gcs.run([sys.executable, "-m", "trainer.prepare", "--input", str(raw), "--output_dir",
                      prepared, "--valid_points", "20", "--test_points", "20", "--shards", "2",
                      "--past_covariates", "lead", "--static_covariates", "store"])
    assert result.returncode == 0, result.stderr[-3000:]
    objects = listing(gcs, f"{prepared}/")
    objects.pop("", None)  # the directory marker
    assert set(objects) == {"prepare.json", "series-00000-of-00002.csv", "series-00001-of-00002.csv"}
    output = f"gs://{bucket}/runs/series"
    trained = train(gcs, ["--data_dir", prepared, "--output_dir", output, "--n_inputs", "8",
                          "--n_outputs", "2", "--model", "linear", "--train_steps", "100",
                          "--save_checkpoints_steps", "100", "--batch_size", "16"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "2 series files (3 series, 360 points): 213 training windows, 57 evaluation windows" \
        in trained.stderr
    metrics = gcs_json(gcs, f"{output}/metrics.json")
    assert metrics["last_global_step"] == 100
    export = metrics["saved_model_path"]
    assert "assets.extra/covariates.json" in listing(gcs, f"{export}/")
    evaluated = gcs.run([sys.executable, "-m", "trainer.evaluate", "--model_dir", output,
                         "--data_dir", prepared, "--split", "test", "--output",
                         str(tmp_path / "test.json")])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads((tmp_path / "test.json").read_text())["windows"] == 3 * (20 - 2 + 1)


def test_vertex_directories_on_gcs(gcs, bucket, tiny_data, tmp_path):
    data = upload_tiny_data(gcs, tiny_data, bucket)
    base = f"gs://{bucket}/job"
    flags = tiny_trainer_flags(data, "unused", steps=100)
    at = flags.index("--output_dir")
    flags = flags[:at] + flags[at + 2:]
    flags[flags.index("--save_checkpoints_steps") + 1] = "50"
    result = train(gcs, flags, env={"AIP_CHECKPOINT_DIR": f"{base}/checkpoints/",
                                    "AIP_MODEL_DIR": f"{base}/model/",
                                    "AIP_TENSORBOARD_LOG_DIR": f"{base}/logs/"})
    assert result.returncode == 0, result.stderr[-3000:]
    objects = listing(gcs, f"{base}/")
    assert {"checkpoints/checkpoint", "checkpoints/config.json", "checkpoints/metrics.json",
            "checkpoints/model.ckpt-100.index", "model/saved_model.pb",
            "model/variables/variables.index", "model/assets.extra/head.json"} <= set(objects)
    assert not [name for name in objects if ".tmp-" in name or "//" in name]
    assert not [name for name in objects if name.startswith("model/") and "ckpt" in name]
    assert [n for n in objects if n.startswith("logs/train/events.out.tfevents.")]
    assert [n for n in objects if n.startswith("logs/eval/events.out.tfevents.")]
    metrics = gcs_json(gcs, f"{base}/checkpoints/metrics.json")
    assert metrics["model_dir"] == f"{base}/model"

    # Read back on gs:// as a user would: the events as TensorBoard reads them, the model as
    # trainer.evaluate and trainer.predict load it.
    rows = np.concatenate([np.loadtxt(p, delimiter=",", dtype=np.float32)
                           for p in tiny_data["eval_files"]])
    np.save(tmp_path / "rows.npy", rows)
    read = gcs.python(
        "import json, numpy as np, tensorflow as tf\n"
        "from trainer.model.serving import holds_saved_model, load_exported_model\n"
        "events = {}\n"
        "for run in ('train', 'eval'):\n"
        f"    for path in tf.io.gfile.glob({base!r} + '/logs/' + run + '/events.out.tfevents.*'):\n"
        "        for event in tf.compat.v1.train.summary_iterator(path):\n"
        "            for value in event.summary.value:\n"
        "                events.setdefault(run + '/' + value.tag, {})[event.step] = value.simple_value\n"
        f"model = load_exported_model({base!r} + '/model')\n"
        f"rows = np.load({str(tmp_path / 'rows.npy')!r})\n"
        f"forecast = model.predict(rows[:, :{N_INPUTS}])\n"
        f"rmse = float(np.sqrt(np.mean((forecast - rows[:, {N_INPUTS}:]) ** 2)))\n"
        f"same = holds_saved_model({base!r} + '/model', {metrics['saved_model_path']!r})\n"
        "print(json.dumps({'events': events, 'rmse': rmse, 'path': model.path, 'same': same,\n"
        "                  'shape': list(forecast.shape)}))\n")
    assert read.returncode == 0, read.stderr[-3000:]
    found = json.loads(read.stdout.strip().splitlines()[-1])
    assert found["path"] == f"{base}/model" and found["same"] is True
    assert found["shape"] == [len(rows), N_OUTPUTS]
    assert found["rmse"] == pytest.approx(metrics["rmse"], rel=1e-4)
    assert max(int(step) for step in found["events"]["train/loss"]) == 100
    assert set(found["events"]["eval/rmse"]) == {"50", "100"}
    assert found["events"]["eval/rmse"][str(metrics["global_step"])] == pytest.approx(metrics["rmse"])


def test_the_model_search_and_an_ensemble_of_cloud_trials_on_gcs(gcs, bucket, tmp_path):
    """forecast auto with its members on gs://, a tuning trial (`--candidate`, Vertex AI's
    AIP_* directories on gs://), then forecast ensemble of both runs' exports there."""
    lines = ["series_id,timestamp,value"]
    rng = np.random.default_rng(0)
    for s in range(4):
        lines += [f"s{s},{t},{(s + 1) * (5 + np.sin(2 * np.pi * t / 4) + 0.2 * rng.normal()):.4f}"
                  for t in range(100)]
    (tmp_path / "raw.csv").write_text("\n".join(lines) + "\n")
    prepared = f"gs://{bucket}/prepared"
    result = gcs.run([sys.executable, "-m", "trainer.prepare", "--input", str(tmp_path / "raw.csv"),
                      "--output_dir", prepared, "--n_inputs", "8", "--n_outputs", "3",
                      "--valid_windows", "5", "--test_windows", "2", "--season", "4"])
    assert result.returncode == 0, result.stderr[-3000:]
    search = f"gs://{bucket}/search"
    result = gcs.run([sys.executable, "-m", "trainer.auto", "--data_dir", prepared, "--output_dir",
                      search, "--time_limit", "300", "--include",
                      "naive,seasonal_naive,linear-closed_form-L8-window_zscore"])
    assert result.returncode == 0, result.stderr[-3000:]
    objects = listing(gcs, f"{search}/")
    assert {"leaderboard.csv", "leaderboard.json",
            "members/linear-closed_form-L8-window_zscore/search.json",
            "members/linear-closed_form-L8-window_zscore/train.log",
            "members/linear-closed_form-L8-window_zscore/metrics.json"} <= set(objects)
    assert [name for name in objects if name.startswith("export/best/")
            and name.endswith("assets.extra/ensemble.json")]
    assert not [name for name in objects if ".tmp-" in name or "temp-" in name]

    job = f"gs://{bucket}/job"
    trial = gcs.run([sys.executable, "-m", "trainer.auto", "--data_dir", prepared, "--look_backs",
                     "8", "--candidate=nlinear-closed_form-L8-window_zscore"],
                    env={"AIP_CHECKPOINT_DIR": f"{job}/7/checkpoints/",
                         "AIP_MODEL_DIR": f"{job}/7/model/",
                         "AIP_TENSORBOARD_LOG_DIR": f"{job}/7/logs/", "CLOUD_ML_TRIAL_ID": "7"})
    assert trial.returncode == 0, trial.stderr[-3000:]
    assert gcs_json(gcs, f"{job}/7/checkpoints/config.json")["model"] == "nlinear"

    ensemble = f"{job}/ensemble"
    result = gcs.run([sys.executable, "-m", "trainer.ensemble", "--data_dir", prepared,
                      "--members", f"{job}/*/checkpoints,{search}/members/*",
                      "--output_dir", ensemble])
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["member"]: row for row in gcs_json(gcs, f"{ensemble}/leaderboard.json")}
    assert {row["status"] for row in rows.values()} == {"baseline", "done", "ensemble"}
    assert len([row for row in rows.values() if row["status"] == "done"]) == 2
    evaluated = gcs.run([sys.executable, "-m", "trainer.evaluate", "--model_dir", ensemble,
                         "--data_dir", prepared, "--split", "valid", "--output",
                         str(tmp_path / "valid.json")])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((tmp_path / "valid.json").read_text())["metrics"]
    assert metrics["mase"] == pytest.approx(rows["ensemble"]["valid_mase"], rel=1e-4)
