# Training image for Vertex AI and legacy AI Platform Training custom container jobs.
# Legacy AI Platform's newest runtime (2.11, Python 3.7) cannot install TensorFlow 2.15,
# the last release with tf.estimator, so both services run this image instead.
#
#   gcloud builds submit --tag gcr.io/PROJECT/lstm-forecast-trainer:latest .
#   docker build -t lstm-forecast-trainer . && docker run --rm lstm-forecast-trainer --train_steps 200
#
# The services append the trainer flags (and, when tuning, --NAME=VALUE per parameter)
# to the ENTRYPOINT.

# TensorFlow 2.15 supports Python 3.9-3.11.
FROM python:3.10-slim

# Log lines reach Cloud Logging as they are written; no .pyc files from the trainer.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the package and its dependencies (TensorFlow, cloudml-hypertune,
# google-cloud-storage) into site-packages, then drop the sources: the job runs the
# installed package, exactly what setup.py ships.
COPY setup.py /tmp/src/
COPY trainer/ /tmp/src/trainer/
RUN pip install --no-cache-dir /tmp/src && rm -rf /tmp/src

# An empty working directory: a run without --output_dir writes to /app/output.
WORKDIR /app
ENTRYPOINT ["python", "-m", "trainer.task"]
