"""The output directory: --overwrite, a restarted chief within its job, the saved config."""

import json
import logging

import pytest

from trainer.data.covariates import Covariate
from trainer.training.config import ARCHITECTURE_KEYS, make_config
from trainer.training.run_dir import (
    check_resume_compatible,
    covariate_shapes,
    load_config_dict,
    prepare_output_dir,
    save_config,
)
from trainer.util.errors import ConfigError


def earlier_run(directory, *, job_id=None, **flags):
    """An output directory as a run left it: config.json and a checkpoint file."""
    prepare_output_dir(make_config(**flags), output_dir=str(directory), is_chief=True,
                       job_id=job_id)
    (directory / "model.ckpt-500.index").write_text("a checkpoint")
    return directory


def test_chief_saves_the_config_with_the_job_id(tmp_path):
    prepare_output_dir(make_config(hidden_units=9), output_dir=str(tmp_path / "run"),
                       is_chief=True, job_id="job_42")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["hidden_units"] == 9 and saved["cloud_ml_job_id"] == "job_42"
    prepare_output_dir(make_config(), output_dir=str(tmp_path / "local"), is_chief=True)
    assert "cloud_ml_job_id" not in json.loads((tmp_path / "local" / "config.json").read_text())


@pytest.mark.parametrize("saved_job, job", [(None, None), ("job_1", None), ("job_1", "job_2"),
                                            (None, "job_2")])
def test_overwrite_deletes_a_run_of_another_or_no_job(tmp_path, saved_job, job, caplog):
    run = earlier_run(tmp_path / "run", job_id=saved_job, hidden_units=32)
    with caplog.at_level(logging.WARNING, logger="trainer.training.run_dir"):
        prepare_output_dir(make_config(hidden_units=64, overwrite=True), output_dir=str(run),
                           is_chief=True, job_id=job)
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
    assert json.loads((run / "config.json").read_text())["hidden_units"] == 64
    assert f"--overwrite: deleting everything in {run}" in caplog.text


def test_overwrite_in_a_restarted_chief_of_the_same_job_keeps_its_checkpoints(tmp_path, caplog):
    run = earlier_run(tmp_path / "run", job_id="job_1", overwrite=True)
    with caplog.at_level(logging.WARNING, logger="trainer.training.run_dir"):
        prepare_output_dir(make_config(overwrite=True), output_dir=str(run), is_chief=True,
                           job_id="job_1")
    assert (run / "model.ckpt-500.index").read_text() == "a checkpoint"
    assert "written by this same job (CLOUD_ML_JOB_ID=job_1)" in caplog.text
    assert "deleting everything" not in caplog.text


def test_overwrite_replaces_an_unreadable_config_of_an_unknown_job(tmp_path, caplog):
    run = earlier_run(tmp_path / "run", job_id="job_1")
    (run / "config.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="trainer.training.run_dir"):
        prepare_output_dir(make_config(overwrite=True), output_dir=str(run), is_chief=True,
                           job_id="job_1")
    assert "config.json is not valid JSON" in caplog.text and "--overwrite replaces it" in caplog.text
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


def test_worker_compares_with_the_saved_architecture_unless_the_chief_overwrites(tmp_path):
    run = earlier_run(tmp_path / "run", hidden_units=32)
    with pytest.raises(ConfigError, match=r"hidden_units: saved 32, now 64"):
        prepare_output_dir(make_config(hidden_units=64), output_dir=str(run), is_chief=False)
    # With --overwrite the chief replaces that config: a worker starting first must not stop.
    prepare_output_dir(make_config(hidden_units=64, overwrite=True), output_dir=str(run),
                       is_chief=False)
    assert (run / "model.ckpt-500.index").exists()  # only the chief deletes
    assert json.loads((run / "config.json").read_text())["hidden_units"] == 32  # nor writes


def test_overwrite_leaves_an_empty_directory_alone(tmp_path, caplog):
    (tmp_path / "run").mkdir()  # as a worker starting before the chief makes it
    with caplog.at_level(logging.WARNING, logger="trainer.training.run_dir"):
        prepare_output_dir(make_config(overwrite=True), output_dir=str(tmp_path / "run"),
                           is_chief=True)
    assert "deleting" not in caplog.text
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["config.json"]


def test_a_run_without_overwrite_resumes_and_keeps_everything(tmp_path):
    run = earlier_run(tmp_path / "run", job_id="job_1", hidden_units=32)
    prepare_output_dir(make_config(hidden_units=32), output_dir=str(run), is_chief=True,
                       job_id="job_2")
    assert (run / "model.ckpt-500.index").read_text() == "a checkpoint"
    assert json.loads((run / "config.json").read_text())["cloud_ml_job_id"] == "job_2"


def test_a_config_without_checkpoints_is_replaced_not_compared(tmp_path, caplog):
    """A first run that failed before its first checkpoint left only config.json: the next
    command, with other flags, is a new run, not a refused resume."""
    run = tmp_path / "run"
    prepare_output_dir(make_config(n_inputs=500), output_dir=str(run), is_chief=True)
    prepare_output_dir(make_config(n_inputs=28), output_dir=str(run), is_chief=False)
    with caplog.at_level(logging.INFO, logger="trainer.training.run_dir"):
        prepare_output_dir(make_config(n_inputs=28), output_dir=str(run), is_chief=True)
    assert "saved no checkpoint: nothing to resume" in caplog.text
    assert load_config_dict(str(run))["n_inputs"] == 28
    # Once a checkpoint exists, other flags are refused again.
    (run / "model.ckpt-1.index").write_text("a checkpoint")
    with pytest.raises(ConfigError, match=r"n_inputs: saved 28, now 500"):
        prepare_output_dir(make_config(n_inputs=500), output_dir=str(run), is_chief=True)
    # The Estimator's list of checkpoints counts as one too.
    (run / "model.ckpt-1.index").unlink()
    (run / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1"\n')
    with pytest.raises(ConfigError, match=r"n_inputs: saved 28, now 500"):
        prepare_output_dir(make_config(n_inputs=500), output_dir=str(run), is_chief=False)


def test_saved_config_round_trips(tmp_path):
    config = make_config(model="gru", hidden_units=7, output_dir=str(tmp_path))
    path = save_config(config, str(tmp_path))
    assert path == f"{tmp_path}/config.json"
    assert load_config_dict(str(tmp_path)) == config.to_dict()
    assert load_config_dict(str(tmp_path / "missing")) is None


def test_resume_with_other_architecture_names_every_differing_key(tmp_path):
    saved = make_config(model="lstm", hidden_units=32, n_inputs=20, n_outputs=5).to_dict()
    check_resume_compatible(make_config(learning_rate=0.5, train_steps=10), saved, where="d")
    with pytest.raises(ConfigError) as error:
        check_resume_compatible(make_config(model="gru", hidden_units=16), saved, where="gs://b/r")
    message = str(error.value)
    assert "gs://b/r" in message
    assert "model: saved 'lstm', now 'gru'" in message
    assert "hidden_units: saved 32, now 16" in message
    assert "n_inputs" not in message and "--overwrite" in message
    assert set(ARCHITECTURE_KEYS) >= {"model", "hidden_units", "n_inputs", "n_outputs"}


def test_resume_with_another_head_or_levels_is_refused_but_ignored_levels_are_not():
    saved = make_config(loss="quantile", quantiles="0.1,0.5,0.9").to_dict()
    with pytest.raises(ConfigError) as error:
        check_resume_compatible(make_config(loss="quantile", quantiles="0.05,0.5,0.95"), saved,
                                where="d")
    assert "quantiles: saved '0.1,0.5,0.9', now '0.05,0.5,0.95'" in str(error.value)
    with pytest.raises(ConfigError, match=r"loss: saved 'quantile', now 'mse'"):
        check_resume_compatible(make_config(), saved, where="d")
    # --quantiles means nothing to the other heads: changing it does not block a resume.
    point = make_config(loss="mae").to_dict()
    check_resume_compatible(make_config(loss="mae", quantiles="0.2,0.8"), point, where="d")


def test_corrupt_saved_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json is not valid JSON"):
        load_config_dict(str(tmp_path))


def test_resume_with_the_covariates_of_other_data_is_refused_naming_both(tmp_path):
    """The covariates come with --data_dir, not a flag: config.json saves their shapes."""
    run = str(tmp_path / "run")
    temp = covariate_shapes([Covariate("temp", "past")])
    prepare_output_dir(make_config(), output_dir=run, is_chief=True, covariates=temp)
    (tmp_path / "run" / "model.ckpt-1.index").write_text("a checkpoint")
    assert load_config_dict(run)["covariates"] == [{"name": "temp", "kind": "past", "categories": 0}]
    prepare_output_dir(make_config(), output_dir=run, is_chief=False, covariates=temp)  # the same
    promo = covariate_shapes([Covariate("temp", "past"),
                              Covariate("promo", "future", vocabulary=("no", "yes"))])
    for now, said in ((promo, "now temp (past), promo (future, 2 categories)"), ([], "now none")):
        with pytest.raises(ConfigError) as error:
            prepare_output_dir(make_config(), output_dir=run, is_chief=True, covariates=now)
        assert f"covariates of the data: saved temp (past), {said}" in str(error.value)
    # Another vocabulary size is another embedding table: refused too.
    bigger = covariate_shapes([Covariate("temp", "past", vocabulary=("a", "b", "c"))])
    with pytest.raises(ConfigError, match=r"now temp \(past, 3 categories\)"):
        check_resume_compatible(make_config(), load_config_dict(run), where=run, covariates=bigger)
    # A config.json from before the covariates were saved is not compared.
    older = {k: v for k, v in load_config_dict(run).items() if k != "covariates"}
    check_resume_compatible(make_config(), older, where=run, covariates=promo)


def test_a_run_directory_from_before_monitored_metric_resumes(tmp_path, caplog):
    """Its config.json has no monitored_metric: it compared by --hypertune_metric (rmse)."""
    run = earlier_run(tmp_path / "run", hidden_units=32)
    older = {k: v for k, v in load_config_dict(str(run)).items() if k != "monitored_metric"}
    (run / "config.json").write_text(json.dumps(older))
    with caplog.at_level(logging.WARNING, logger="trainer.training.run_dir"):
        prepare_output_dir(make_config(hidden_units=32), output_dir=str(run), is_chief=True)
    assert (run / "model.ckpt-500.index").read_text() == "a checkpoint"
    assert load_config_dict(str(run))["monitored_metric"] == "mase"
    # What changes is said: the evaluations so far are ranked again.
    assert (f"--monitored_metric mase: the evaluations so far in {run} were compared by rmse"
            in caplog.text)


def test_another_monitored_metric_on_resume_is_allowed_and_said_once(tmp_path, caplog):
    run = earlier_run(tmp_path / "run", monitored_metric="smape")
    assert "monitored_metric" not in ARCHITECTURE_KEYS
    with caplog.at_level(logging.WARNING, logger="trainer.training.run_dir"):
        prepare_output_dir(make_config(monitored_metric="smape"), output_dir=str(run),
                           is_chief=True)
        assert "--monitored_metric" not in caplog.text  # the same: nothing to say
        prepare_output_dir(make_config(monitored_metric="mae"), output_dir=str(run),
                           is_chief=False)
        assert "--monitored_metric" not in caplog.text  # only the chief says it
        prepare_output_dir(make_config(monitored_metric="mae"), output_dir=str(run),
                           is_chief=True)
    assert "compared by smape. From the next evaluation on, metrics.json and early stopping " \
        "rank all of them by mae" in caplog.text
    assert load_config_dict(str(run))["monitored_metric"] == "mae"
