"""The closed-form fit of the networks that are linear in their variables (`--solver closed_form`).

`linear`, `dlinear` and `nlinear` give their output as `LinearTerms` (`trainer.model.networks`):
the scaled output is offset + features @ weights + intercept. Their squared-error loss on the
scaled targets is then a least-squares problem, and its minimum needs no optimizer:

1. `design` builds, in the graph, each window's features (all the terms' features side by side,
   from the same scaling and covariate inputs as `model_fn`'s forward pass) and its target (the
   scaled labels minus the offset), in float64;
2. one pass over the training windows adds up the normal equations (`NormalEquations.add`: the
   features' sums, their Gram matrix and the features times the targets);
3. `solve` gives the ridge solution for a penalty `penalty`: the weights W minimising
   sum ||x W + b - t||^2 + lambda * ||W||^2 with lambda = penalty * the mean of the features'
   centred squares summed over windows (so that a penalty means the same whatever the units
   and the number of windows), the intercept b not penalised;
4. `assignments` turns W and b into the values of the network's own variables, so that a
   checkpoint of them is restored, evaluated and exported by the ordinary `model_fn`.

The centred Gram matrix is diagonalised once, so every penalty of a grid costs one product.
A feature constant over all windows gets weight 0. When the rest is singular or ill-conditioned
(collinear inputs, more weights than windows), a penalty too small to keep the solve accurate is
raised to the least that does (`Solution.forced`).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from trainer.data.covariates import Covariate
from trainer.data.schema import FEATURE_KEY
from trainer.model import scaling
from trainer.model.covariate_inputs import network_inputs
from trainer.model.networks import NETWORKS, LinearTerms
from trainer.model.spec import ModelSpec
from trainer.util.errors import ConfigError
from trainer.util.lazy import tf

# The largest condition number of the penalised system that the solve accepts; above it a
# penalty is raised (float64 keeps about 16 digits: this leaves about 6 for the weights).
MAX_CONDITION = 1e10
# A feature whose centred square is below this share of the largest one's is constant.
CONSTANT_FEATURE = 1e-12
# The penalties (relative, see `solve`) tried by default, each one evaluated on the valid split.
DEFAULT_PENALTIES = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def can_fit(model: str) -> bool:
    """Whether `--model model` is linear in its variables (`--solver closed_form` can fit it)."""
    return model in NETWORKS and NETWORKS[model].linear_terms is not None


def closed_form_models() -> List[str]:
    """The `--model` names `--solver closed_form` can fit."""
    return sorted(name for name in NETWORKS if can_fit(name))


def closed_form_problem(*, model: str, head: str, covariates: Sequence[Covariate] = ()) -> str:
    """Why `--solver closed_form` cannot fit `model` with `head` and `covariates`, or ""."""
    if not can_fit(model):
        return (f"--solver closed_form fits the models linear in their weights "
                f"({', '.join(closed_form_models())}), not --model {model}; use --solver "
                "gradient for it")
    if head != "mse":
        return (f"--solver closed_form minimises the squared error (--loss mse), not --loss "
                f"{head}; use --loss mse (with --calibrate_intervals on for intervals) or "
                "--solver gradient")
    categorical = [covariate.name for covariate in covariates if covariate.categorical]
    if categorical:
        return (f"--solver closed_form cannot fit the embeddings of the categorical covariates "
                f"{', '.join(categorical)} (they are not linear in the weights); use --solver "
                "gradient, or prepare the data without them")
    return ""


def check_spec(spec: ModelSpec) -> None:
    """A ConfigError unless the closed-form fit can fit `spec`'s model, head and covariates."""
    problem = closed_form_problem(model=spec.model, head=spec.head, covariates=spec.covariates)
    if problem:
        raise ConfigError(problem)


class Column(NamedTuple):
    """Where a term's features sit among the design's columns, and its variables' names."""

    kernel: str  # the kernel variable's full name, e.g. "dlinear/trend/kernel"
    bias: Optional[str]  # the bias variable's full name, or None
    begin: int
    end: int


class Design(NamedTuple):
    """One batch of the design: features [batch, p] and targets [batch, n_outputs] (float64),
    and where each term's features sit (the same for every batch)."""

    features: tf.Tensor
    targets: tf.Tensor
    columns: Tuple[Column, ...]
    collinear: str = ""  # why the features are collinear by construction, if they are


def design(features: Dict[str, tf.Tensor], labels: tf.Tensor, spec: ModelSpec) -> Design:
    """The design of one batch, in the graph: what `model_fn`'s forward pass feeds the
    network's terms, and the targets its loss compares them with (scaled, less the offset)."""
    check_spec(spec)
    scaled_inputs, state = scaling.scale_inputs(features[FEATURE_KEY], scheme=spec.scaling,
                                                mean=spec.scale_mean, std=spec.scale_std)
    sequence, context = network_inputs(scaled_inputs, features, spec.covariates,
                                       n_inputs=spec.n_inputs)
    if sequence.shape.rank == 2:
        sequence = sequence[:, :, None]
    terms: LinearTerms = NETWORKS[spec.model].linear_terms(sequence, context)
    targets = scaling.scale(tf.cast(labels, tf.float32), state)
    if terms.offset is not None:
        targets = targets - terms.offset
    columns, begin = [], 0
    for term in terms.terms:
        width = int(term.features.shape[-1])
        columns.append(Column(kernel=f"{spec.model}/{term.kernel}",
                              bias=f"{spec.model}/{term.bias}" if term.bias else None,
                              begin=begin, end=begin + width))
        begin += width
    matrix = tf.concat([tf.cast(term.features, tf.float64) for term in terms.terms], axis=-1)
    collinear = [terms.collinear] if terms.collinear else []
    if spec.scaling == "window_zscore":
        collinear.append("each window's z-scored inputs sum to 0")
    return Design(matrix, tf.cast(targets, tf.float64), tuple(columns), "; ".join(collinear))


def batch_sums(batch: Design) -> Dict[str, tf.Tensor]:
    """The normal equations' sums over one batch (graph tensors, for `NormalEquations.add`)."""
    x, t = batch.features, batch.targets
    return {"windows": tf.shape(x)[0], "x_sum": tf.reduce_sum(x, axis=0),
            "t_sum": tf.reduce_sum(t, axis=0), "xx": tf.matmul(x, x, transpose_a=True),
            "xt": tf.matmul(x, t, transpose_a=True)}


@dataclasses.dataclass
class NormalEquations:
    """The sums of a least-squares problem over the windows seen so far (float64)."""

    parameters: int  # weights per output: the design's columns
    outputs: int
    windows: int = 0
    x_sum: Optional[np.ndarray] = None
    t_sum: Optional[np.ndarray] = None
    xx: Optional[np.ndarray] = None
    xt: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if self.x_sum is None:
            self.x_sum = np.zeros(self.parameters)
            self.t_sum = np.zeros(self.outputs)
            self.xx = np.zeros((self.parameters, self.parameters))
            self.xt = np.zeros((self.parameters, self.outputs))

    def add(self, sums: Dict[str, np.ndarray]) -> None:
        """Add one batch's `batch_sums`, as fetched."""
        self.windows += int(sums["windows"])
        self.x_sum += sums["x_sum"]
        self.t_sum += sums["t_sum"]
        self.xx += sums["xx"]
        self.xt += sums["xt"]


class Solution(NamedTuple):
    """The weights [p, n_outputs] and intercept [n_outputs] for one penalty."""

    weights: np.ndarray
    intercept: np.ndarray
    penalty: float  # as asked
    used_penalty: float  # as solved: larger than asked when `forced` says why
    forced: str  # empty, or why the penalty was raised


class Solver:
    """Ridge solutions of one `NormalEquations` for any penalty, from one diagonalisation of
    the centred Gram matrix C = X'X - n m m' (m the features' mean): the intercept, which is
    not penalised, is t's mean less m W, and W = (C + lambda I)^-1 (X't - n m t_mean')."""

    def __init__(self, equations: NormalEquations):
        if not equations.windows:
            raise ValueError("the closed-form fit saw no training window")
        n = equations.windows
        self.windows = n
        self.parameters = equations.parameters
        self.x_mean = equations.x_sum / n
        self.t_mean = equations.t_sum / n
        centred = equations.xx - n * np.outer(self.x_mean, self.x_mean)
        centred_xt = equations.xt - n * np.outer(self.x_mean, self.t_mean)
        # A feature constant over every window (nlinear's last input less itself, a covariate
        # that never moves) says nothing: weight 0, and out of the system's condition.
        squares = np.diag(centred)
        self.used = squares > CONSTANT_FEATURE * max(float(squares.max(initial=0.0)), 1e-300)
        self.constant_features = int((~self.used).sum())
        kept = np.ix_(self.used, self.used)
        eigenvalues, self.vectors = np.linalg.eigh((centred[kept] + centred[kept].T) / 2)
        self.eigenvalues = np.clip(eigenvalues, 0.0, None)  # >= 0 but for rounding
        self.projected = self.vectors.T @ centred_xt[self.used]
        # The unit of the penalties: the mean centred square of a feature, over all windows.
        self.unit = float(squares[self.used].mean()) if self.used.any() else 0.0

    def solve(self, penalty: float, *, collinear: str = "") -> Solution:
        """The ridge solution for `penalty` (>= 0), in units of the features' mean centred
        square times the windows; raised when the system would be ill-conditioned (`collinear`:
        why the features are collinear by construction, if they are)."""
        if penalty < 0:
            raise ValueError(f"a ridge penalty must be >= 0, got {penalty}")
        if not self.used.any():  # every feature constant: the mean of the targets
            weights = np.zeros((self.parameters, self.t_mean.shape[0]))
            return Solution(weights, self.t_mean.copy(), penalty, penalty,
                            "every feature is constant over the training windows: the forecast "
                            "is the targets' mean")
        largest, smallest = float(self.eigenvalues[-1]), float(self.eigenvalues[0])
        wanted = penalty * self.unit
        # The least lambda with (largest + lambda) / (smallest + lambda) <= MAX_CONDITION.
        least = max((largest - MAX_CONDITION * smallest) / (MAX_CONDITION - 1), 0.0)
        forced = ""
        used = wanted
        if wanted < least:
            used = least
            condition = (largest + wanted) / (smallest + wanted) if smallest + wanted > 0 else np.inf
            if collinear:
                reason = collinear
            elif self.windows <= self.parameters:
                reason = (f"{self.windows} training windows for {self.parameters} weights per "
                          "output")
            else:
                reason = ("the features are (nearly) collinear, e.g. a covariate that repeats "
                          "another, or inputs that move together")
            forced = (f"the normal equations are singular or ill-conditioned (condition number "
                      f"{condition:.3g}: {reason}); the penalty {penalty:g} was raised to "
                      f"{used / self.unit:.3g}, the least that keeps it under "
                      f"{MAX_CONDITION:g}")
        weights = np.zeros((self.parameters, self.t_mean.shape[0]))
        weights[self.used] = self.vectors @ (self.projected / (self.eigenvalues + used)[:, None])
        intercept = self.t_mean - self.x_mean @ weights
        return Solution(weights, intercept, penalty, used / self.unit, forced)


def assignments(solution: Solution, columns: Tuple[Column, ...]) -> Dict[str, np.ndarray]:
    """The network's variables (by full name) holding `solution`: each term's rows of the
    weights as its kernel, the intercept as the first bias and zeros as the others."""
    values: Dict[str, np.ndarray] = {}
    intercept_given = False
    for column in columns:
        values[column.kernel] = solution.weights[column.begin:column.end].astype(np.float32)
        if column.bias:
            values[column.bias] = (np.zeros_like(solution.intercept) if intercept_given
                                   else solution.intercept).astype(np.float32)
            intercept_given = True
    if not intercept_given:
        raise ValueError("the network has no bias to hold the intercept")
    return values
