"""The model: networks, scaling, heads, optimizers, metrics, the typed model spec, `model_fn`
and the serving signature (export and client). Imports only `trainer.data` and `trainer.util`."""
