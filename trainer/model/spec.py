"""`ModelSpec`: everything `model_fn` builds the graph from, typed and checked.

The Estimator passes it to `model_fn` as `params` (the Estimator only hands `params` on, it
never reads it). It is made from the trainer's flags and the statistics of prepare.json by
`trainer.training.experiment.model_spec`; the defaults of the flags live only there, in
`trainer.training.config.TrainerConfig`, so this class restates none of them: the fields
that have a default here are the neutral values of things that are not always given.
"""

import dataclasses
from typing import Optional, Tuple

from trainer.data.covariates import Covariate
from trainer.model.calibration import Calibration
from trainer.model.heads import HEADS, check_quantiles, get_head
from trainer.model.networks import NETWORKS
from trainer.model.optimizers import OPTIMIZERS, SCHEDULES
from trainer.model.scaling import SCHEMES


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The network, head, optimizer, scaling and metrics of one model.

    >>> ModelSpec(model="lstm", hidden_units=8, n_inputs=7, n_outputs=3, head="mse",
    ...           optimizer="sgd", learning_rate=0.1, clip_gradient_norm=5.0, scaling="none",
    ...           season=1).steps_per_run
    1
    """

    model: str  # a NETWORKS name
    hidden_units: int
    n_inputs: int
    n_outputs: int
    head: str  # a HEADS name
    optimizer: str  # an OPTIMIZERS name
    learning_rate: float
    clip_gradient_norm: float  # 0: no clipping
    scaling: str  # a SCHEMES name
    season: int  # of the seasonal naive baseline
    scale_mean: float = 0.0  # global_zscore only
    scale_std: float = 1.0  # global_zscore only
    mase_scale: Optional[float] = None  # None: from the evaluated windows' own inputs
    rmsse_scale: Optional[float] = None  # the same for RMSSE (the in-sample naive MSE)
    # > 0: evaluation features carry each window's series and scales; the metrics score each
    # of this many series on its own scale. 0: the windows are pooled as one series.
    series_count: int = 0
    steps_per_run: int = 1  # training steps per session run (a loop in the graph when > 1)
    train_steps: Optional[int] = None  # where the loop stops; needed when steps_per_run > 1
    covariates: Tuple[Covariate, ...] = ()  # from prepare.json, in column order
    quantiles: Tuple[float, ...] = ()  # the levels of the quantile head; empty for the others
    dropout: float = 0.0  # rate while training, where the network has layers to drop
    lr_schedule: str = "constant"  # a SCHEDULES name
    warmup_steps: int = 0  # steps of linear warm-up of the learning rate
    # The split-conformal offsets applied to the quantiles after unscaling, in every mode
    # (`trainer.model.calibration`); None: the head's own quantiles (a point head: none).
    calibration: Optional[Calibration] = None

    def __post_init__(self) -> None:
        for field, registry in (("model", NETWORKS), ("head", HEADS), ("optimizer", OPTIMIZERS),
                                ("scaling", SCHEMES)):
            if getattr(self, field) not in registry:
                raise ValueError(f"unknown {field} {getattr(self, field)!r}; expected one of "
                                 f"{sorted(registry)}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; expected one of "
                             f"{sorted(SCHEDULES)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout {self.dropout} must be in [0, 1)")
        if self.head == "quantile" and self.quantiles:
            check_quantiles(self.quantiles)
        if self.quantiles and self.head != "quantile":
            raise ValueError(f"quantile levels {self.quantiles} need the quantile head, got head "
                             f"{self.head!r}")
        if self.calibration is not None:
            if self.calibration.n_outputs != self.n_outputs:
                raise ValueError(f"the calibration has offsets for {self.calibration.n_outputs} "
                                 f"steps, the model forecasts n_outputs {self.n_outputs}")
            head_levels = get_head(self.head, self.quantiles).levels
            if head_levels and head_levels != self.calibration.levels:
                raise ValueError(f"the calibration is of the levels {self.calibration.levels}, the "
                                 f"quantile head forecasts {head_levels}")
        if self.steps_per_run > 1 and self.train_steps is None:
            raise ValueError(f"steps_per_run {self.steps_per_run} needs train_steps, where the "
                             "loop of training steps stops")
