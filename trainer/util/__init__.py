"""Helpers that know nothing of forecasting: errors, files, the command-line kit, the cloud
environment, Cloud Storage. The lowest layer: nothing here imports another part of `trainer`."""
