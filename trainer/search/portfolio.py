"""The candidates of the model search, cheapest and strongest first.

`forecast auto` trains them in this order until its time runs out, so the order is the
search's judgement of what is worth a minute:

1. the baselines, naive and seasonal naive: no training, and members of the ensemble like any
   other (they protect it from "the disastrous forecasts" on series where every model fails);
2. the networks linear in their variables (`Network.linear_terms`), fitted in closed form
   (seconds each), for each look-back and two scalings;
3. the networks the registry ranks for the search (`Network.search_rank`, `search_flags`),
   trained with the accuracy benchmark's shared settings, at the first look-back;
4. the same at the other look-backs;
5. a small grid around those settings at the first look-back: another learning rate, twice
   the width, the squared-error loss;
6. the networks of tier 3 again with the other seeds.

Every candidate but the baselines is an ordinary `trainer.task` run; its flags here are those
beyond the search's own (data, output directory, window, seed).

>>> [c.name for c in portfolio(look_backs=(26,), seeds=(1,))][:4]
['naive', 'seasonal_naive', 'linear-closed_form-L26-window_zscore', 'linear-closed_form-L26-global_zscore']
"""

import dataclasses
from typing import Any, Dict, List, Sequence, Tuple

from trainer.model.metrics import BASELINES
from trainer.model.networks import NETWORKS
from trainer.model.optimizers import SEARCH_OPTIMIZER

NAIVE, SEASONAL_NAIVE = BASELINES  # the metrics' baselines, members of the ensemble as well
# The settings every trained candidate shares (the accuracy benchmark's, docs/accuracy.md):
# adam at 0.001, batches of 64, at most 4000 steps, an evaluation every 500 steps and a stop
# after 3 evaluations without a better valid MASE. The loss is the mean absolute error: the
# search chooses by MASE, a scaled mean absolute error, and on the valid windows of M3
# monthly, M4 Weekly and both Tourism sets the MAE loss beat the squared error for 16 of the
# 18 networks trained both ways (docs/search.md, "Why the MAE loss").
TRAINED_FLAGS: Tuple[Tuple[str, Any], ...] = (
    ("optimizer", SEARCH_OPTIMIZER), ("learning_rate", 0.001), ("batch_size", 64), ("train_steps", 4000),
    ("save_checkpoints_steps", 500), ("early_stopping_evals", 3), ("monitored_metric", "mase"),
    ("scaling", "window_zscore"), ("loss", "mae"))
CLOSED_FORM_SCALINGS = ("window_zscore", "global_zscore")
# Tier 5: one change at a time to a tier-3 candidate.
GRID: Tuple[Tuple[str, Tuple[Tuple[str, Any], ...]], ...] = (
    ("lr0.0003", (("learning_rate", 0.0003),)),
    ("wide", ()),  # twice the network's width (its search_flags' hidden_units)
    ("mse", (("loss", "mse"),)),
)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One member the search may train: a name that is also its directory, and its flags."""

    name: str
    flags: Tuple[Tuple[str, Any], ...] = ()  # trainer flags; empty for a baseline
    baseline: str = ""  # NAIVE or SEASONAL_NAIVE: computed from the inputs, not trained
    n_inputs: int = 0  # its look-back (0 for a baseline: it reads what the ensemble reads)
    seed: int = 0

    @property
    def flag_dict(self) -> Dict[str, Any]:
        return dict(self.flags)

    def describe(self) -> str:
        """Its settings as a leaderboard shows them: `name=value` pairs."""
        if self.baseline:
            return "computed from the inputs"
        return " ".join(f"{name}={value}" for name, value in self.flags)


def searched_networks() -> List[str]:
    """The networks the search trains, by their registry rank."""
    ranked = [(network.search_rank, name) for name, network in NETWORKS.items()
              if network.search_rank]
    return [name for _, name in sorted(ranked)]


def linear_networks() -> List[str]:
    """The networks the search fits in closed form, in registry order."""
    return [name for name, network in NETWORKS.items() if network.linear_terms is not None]


def _trained(model: str, *, n_inputs: int, seed: int, tag: str = "",
             extra: Tuple[Tuple[str, Any], ...] = ()) -> Candidate:
    own = dict(NETWORKS[model].search_flags)
    if tag == "wide":
        own["hidden_units"] = 2 * own.get("hidden_units", 64)
    flags = {"model": model, **dict(TRAINED_FLAGS), **own, **dict(extra), "n_inputs": n_inputs,
             "seed": seed}
    name = "-".join(part for part in (model, tag, f"L{n_inputs}", f"s{seed}") if part)
    return Candidate(name=name, flags=tuple(flags.items()), n_inputs=n_inputs, seed=seed)


def portfolio(*, look_backs: Sequence[int], seeds: Sequence[int]) -> List[Candidate]:
    """Every candidate, in the order the search trains them (the module's docstring says why)."""
    if not look_backs or not seeds:
        raise ValueError(f"the search needs at least one look-back and one seed, got {look_backs} "
                         f"and {seeds}")
    first, others = look_backs[0], list(look_backs[1:])
    candidates = [Candidate(name=name, baseline=name) for name in BASELINES]
    for n_inputs in look_backs:
        for model in linear_networks():
            for scaling in CLOSED_FORM_SCALINGS:
                flags = {"model": model, "solver": "closed_form", "loss": "mse",
                         "scaling": scaling, "n_inputs": n_inputs, "seed": seeds[0]}
                candidates.append(Candidate(name=f"{model}-closed_form-L{n_inputs}-{scaling}",
                                            flags=tuple(flags.items()), n_inputs=n_inputs,
                                            seed=seeds[0]))
    networks = searched_networks()
    candidates += [_trained(model, n_inputs=first, seed=seeds[0]) for model in networks]
    candidates += [_trained(model, n_inputs=n_inputs, seed=seeds[0])
                   for n_inputs in others for model in networks]
    candidates += [_trained(model, n_inputs=first, seed=seeds[0], tag=tag, extra=extra)
                   for tag, extra in GRID for model in networks]
    candidates += [_trained(model, n_inputs=first, seed=seed)
                   for seed in seeds[1:] for model in networks]
    return candidates
