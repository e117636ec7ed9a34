"""Run wiring: the trainer's configuration, the run directory, reporting, the Estimator
experiment. Imports the layers below (model, data, util), never a command module."""
