"""LSTM time-series forecaster: a tf.estimator training package for Google Cloud."""

__version__ = "0.1.0"
