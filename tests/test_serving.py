"""The serving signature: the receiver uses the training transform; the client finds exports."""

import pytest
import tensorflow as tf

from tests.conftest import N_INPUTS
from trainer.data.schema import FEATURE_KEY, build_features
from trainer.model.serving import make_serving_input_receiver_fn, resolve_saved_model
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
