"""The serving signature: the receiver uses the training transform; the client finds exports; an
export is copied into a model directory of its own."""

import pytest
import tensorflow as tf

from tests.conftest import N_INPUTS
from trainer.data.schema import FEATURE_KEY, build_features
from trainer.model.serving import (
    copy_saved_model,
    holds_saved_model,
    make_serving_input_receiver_fn,
    resolve_saved_model,
)
from trainer.util.errors import ConfigError


def test_serving_uses_the_same_transform():
    with tf.Graph().as_default():
        receiver = make_serving_input_receiver_fn(n_inputs=N_INPUTS)()
        rawdata = receiver.receiver_tensors[FEATURE_KEY]
        assert rawdata.dtype == tf.float32 and rawdata.shape.as_list() == [None, N_INPUTS]
        assert set(receiver.features) == set(build_features(rawdata)) == {FEATURE_KEY}


def test_model_dir_without_an_export_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"holds no saved_model.pb and no export/best or "
                                          r"export/latest"):
        resolve_saved_model(str(tmp_path))
    for stamp in ("100", "200"):
        (tmp_path / "export" / "latest" / stamp).mkdir(parents=True)
        (tmp_path / "export" / "latest" / stamp / "saved_model.pb").write_bytes(b"")
    assert resolve_saved_model(str(tmp_path)) == f"{tmp_path}/export/latest/200"
    # The best export, when there is one, is the run's answer.
    (tmp_path / "export" / "best" / "150").mkdir(parents=True)
    (tmp_path / "export" / "best" / "150" / "saved_model.pb").write_bytes(b"")
    assert resolve_saved_model(str(tmp_path)) == f"{tmp_path}/export/best/150"


def save_scaling_model(path, factor: float) -> str:
    """A real SavedModel whose serving_default returns x * factor (a variable)."""
    module = tf.Module()
    module.factor = tf.Variable(factor)
    module.serve = tf.function(lambda x: {"y": x * module.factor},
                               input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    (path / "assets.extra").mkdir()
    (path / "assets.extra" / "head.json").write_text(f'{{"factor": {factor}}}')
    return str(path)


def test_copy_saved_model_writes_the_model_itself_and_keeps_other_files(tmp_path):
    two, three = save_scaling_model(tmp_path / "two", 2.0), save_scaling_model(tmp_path / "three", 3.0)
    destination = tmp_path / "model"
    (destination / "variables").mkdir(parents=True)
    (destination / "variables" / "stale.index").write_text("from an older model")
    (destination / "model.ckpt-5.index").write_text("a checkpoint beside it")

    copy_saved_model(two, str(destination))
    served = tf.saved_model.load(str(destination)).signatures["serving_default"]
    assert served(x=tf.constant([1.0, 4.0]))["y"].numpy().tolist() == [2.0, 8.0]
    assert holds_saved_model(str(destination), two) and not holds_saved_model(str(destination), three)
    assert not (destination / "variables" / "stale.index").exists()
    assert (destination / "model.ckpt-5.index").read_text() == "a checkpoint beside it"
    assert resolve_saved_model(str(destination)) == str(destination)

    copy_saved_model(three, str(destination))
    served = tf.saved_model.load(str(destination)).signatures["serving_default"]
    assert served(x=tf.constant([1.0, 4.0]))["y"].numpy().tolist() == [3.0, 12.0]
    assert holds_saved_model(str(destination), three)
    assert (destination / "assets.extra" / "head.json").read_text() == '{"factor": 3.0}'
    assert sorted(p.name for p in destination.iterdir()) == [
        "assets", "assets.extra", "fingerprint.pb", "model.ckpt-5.index", "saved_model.pb", "variables"]
