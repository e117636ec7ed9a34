"""Scaling inside the model graph: inputs are scaled before the network, forecasts unscaled after.

`--scaling` picks the scheme; each is an affine map per window, `scaled = (x - shift) / scale`:

| scheme | shift | scale |
|---|---|---|
| `none` | 0 | 1 |
| `global_zscore` | training mean (prepare.json or --scale_mean) | training std |
| `last_value` | the window's last input value | 1 |
| `window_zscore` | the mean of the window's inputs | their std (1 when the window is flat) |

Because both directions are in the graph built by `model_fn`, the exported SavedModel takes
`rawdata` and returns `predicted` in the original units; the training loss compares the scaled
forecast with the targets scaled by the same (shift, scale), so it is unit-free.

>>> scaled, state = scale_inputs(tf.constant([[1., 2., 3.]]), scheme="last_value")
>>> scaled.numpy().tolist(), unscale(tf.constant([[0.5]]), state).numpy().tolist()
([[-2.0, -1.0, 0.0]], [[3.5]])
"""

from __future__ import annotations

from typing import Any, Dict, NamedTuple, Optional, Tuple

from trainer.data.prepared import mase_scale, read_summary, rmsse_scale, training_mean_std
from trainer.util.errors import ConfigError
from trainer.util.lazy import tf

# The one registry of `--scaling` choices, with the note --help shows beside each.
SCHEMES: Dict[str, str] = {
    "none": "",
    "global_zscore": "training mean and std from --stats_file, or --scale_mean/--scale_std",
    "last_value": "subtract the window's last value",
    "window_zscore": "the window's own mean and std",
}
# Each window's own mean and std: without it the model sees raw values whose level and spread
# differ between series (M4 Weekly with the other defaults: OWA 17.7 raw, 0.82 with it).
DEFAULT_SCHEME = "window_zscore"
# A window whose inputs vary less than this is flat: window_zscore only subtracts its mean.
FLAT_WINDOW_STD = 1e-6


class ScaleState(NamedTuple):
    """Per-window affine map: shift and scale, each [batch, 1]."""

    shift: tf.Tensor
    scale: tf.Tensor


def scale_inputs(rawdata: tf.Tensor, *, scheme: str, mean: float = 0.0, std: float = 1.0
                 ) -> Tuple[tf.Tensor, Optional[ScaleState]]:
    """[batch, n_inputs] -> (scaled inputs, state); the state is None for scheme 'none'.

    `mean` and `std` are used by 'global_zscore' only (baked into the graph as constants).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scaling {scheme!r}; expected one of {tuple(SCHEMES)}")
    if scheme == "none":
        return rawdata, None
    ones = tf.ones_like(rawdata[:, :1])
    if scheme == "global_zscore":
        if not std > 0:
            raise ConfigError(f"global_zscore scaling needs a training std > 0, got {std}")
        state = ScaleState(shift=ones * mean, scale=ones * std)
    elif scheme == "last_value":
        state = ScaleState(shift=rawdata[:, -1:], scale=ones)
    else:  # window_zscore
        window_mean, window_variance = tf.nn.moments(rawdata, axes=[1], keepdims=True)
        window_std = tf.sqrt(window_variance)
        state = ScaleState(shift=window_mean,
                           scale=tf.where(window_std < FLAT_WINDOW_STD, ones, window_std))
    return scale(rawdata, state), state


def _broadcast(state: ScaleState, values: tf.Tensor) -> ScaleState:
    """The state [batch, 1] shaped to scale `values` of rank 2 ([batch, n]) or 3 ([batch, n, width])."""
    if values.shape.rank == 3:
        return ScaleState(shift=state.shift[:, :, None], scale=state.scale[:, :, None])
    return state


def scale(values: tf.Tensor, state: Optional[ScaleState]) -> tf.Tensor:
    """Values in original units [batch, n] (or [batch, n, width]) -> scaled by the window's state
    (the targets, for the loss)."""
    if state is None:
        return values
    state = _broadcast(state, values)
    return (values - state.shift) / state.scale


def unscale(values: tf.Tensor, state: Optional[ScaleState]) -> tf.Tensor:
    """Scaled values [batch, n] or [batch, n, width] (the network's forecast) -> original units."""
    if state is None:
        return values
    state = _broadcast(state, values)
    return values * state.scale + state.shift


def resolve_statistics(*, scaling: str, stats_file: str, scale_mean: float, scale_std: float,
                       season: int, summary: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The statistics model_fn needs, from prepare.json (`stats_file`) or the flags.

    Returns {"scale_mean", "scale_std", "mase_scale", "rmsse_scale"}: mean and std for
    global_zscore (0 and 1 otherwise), the in-sample MAE of the seasonal naive forecast with
    `season` on the training split and the in-sample MSE of the naive one (None without a stats
    file, or an older one: they are then computed from the evaluation windows' own inputs).
    These pooled scales serve rows without series; series are scored on their own scales.
    """
    if summary is None and stats_file:  # not handed over: read it here
        summary = read_summary(stats_file)
    result: Dict[str, Any] = {"scale_mean": 0.0, "scale_std": 1.0, "mase_scale": None,
                              "rmsse_scale": None}
    if scaling == "global_zscore":
        if summary is not None:
            result["scale_mean"], result["scale_std"] = training_mean_std(summary)
        else:
            result["scale_mean"], result["scale_std"] = scale_mean, scale_std
        if not result["scale_std"] > 0:
            raise ConfigError(f"--scaling global_zscore: the training std is {result['scale_std']} "
                              f"(from {stats_file or '--scale_std'}); a constant training series "
                              "cannot be z-scored: use --scaling last_value or none")
    if summary is not None:
        result["mase_scale"] = mase_scale(summary, season=season, source=stats_file)
        result["rmsse_scale"] = rmsse_scale(summary)
    return result
