"""Covariates: the other columns of a series that help forecast it, checked and encoded once.

Three kinds, by what is known when a forecast is made (`KINDS`):

- `past`: known only up to the forecast start (e.g. the weather measured so far, another
  series' values); the model reads them over its `n_inputs` steps.
- `future`: known for the horizon too (calendar, planned promotions, prices, holidays); the
  model reads them over all `n_inputs + n_outputs` steps.
- `static`: one value per series (store size, region; the series id itself when its column is
  named, e.g. `--static_covariates series_id`).

A past or future covariate is numeric when every value of its column is a number, categorical
when none is (a column of both is an error naming the first odd value); a static one is
numeric when every series' value is a number, else categorical. A category's values get an
id vocabulary (sorted, in prepare.json) and the model an embedding (a past or
future category per step, a static one per series). Numeric covariates are scaled inside the
model with the training split's mean and std, saved in prepare.json, so the SavedModel takes
them in their own units.

In a series shard the covariates follow the five fixed columns, past, then future, then
static, a categorical one as its id in the vocabulary (`trainer.data.prepared`).
"""

import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from trainer.data.schema import COVARIATE_KEY, ID_KEYS
from trainer.data.series import Series
from trainer.data.windows import SPLIT_CODES
from trainer.util.errors import ConfigError, DataError

KINDS = ("past", "future", "static")
CALENDAR_CHOICES = ("none", "auto")
DAY = 86400.0


def _days(times: np.ndarray) -> np.ndarray:
    return np.floor(times / DAY)


def _day_of_year(times: np.ndarray) -> np.ndarray:
    days = _days(times).astype("int64").astype("datetime64[D]")
    return (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.float64)


# Calendar features of a time in seconds since 1970-01-01 UTC, each in [-0.5, 0.5] (the
# convention of GluonTS's time features): name -> function of the times.
CALENDAR_FEATURES = {
    "calendar_hour_of_day": lambda t: np.floor(np.mod(t, DAY) / 3600.0) / 23.0 - 0.5,
    "calendar_day_of_week": lambda t: np.mod(_days(t) + 3, 7) / 6.0 - 0.5,  # Monday -0.5
    "calendar_day_of_year": lambda t: _day_of_year(t) / 365.0 - 0.5,
}


def calendar_features(choice: str, *, time_kind: str, step: Optional[float]) -> List[str]:
    """The calendar features of `--calendar_features choice` for timestamps of `time_kind`
    ("datetime" or "index") `step` seconds apart: with `auto`, the hour of day below a daily
    step, the day of week below a weekly one, the day of year always; none for a time index.

    >>> calendar_features("auto", time_kind="datetime", step=3600.0)
    ['calendar_hour_of_day', 'calendar_day_of_week', 'calendar_day_of_year']
    >>> calendar_features("auto", time_kind="datetime", step=7 * 86400.0)
    ['calendar_day_of_year']
    """
    if choice == "none" or time_kind != "datetime" or step is None:
        return []
    return [name for name, below in (("calendar_hour_of_day", DAY), ("calendar_day_of_week", 7 * DAY),
                                     ("calendar_day_of_year", float("inf"))) if step < below]


@dataclasses.dataclass(frozen=True)
class Covariate:
    """One covariate: its column, kind, and how the model takes it."""

    name: str
    kind: str  # one of KINDS
    vocabulary: Tuple[str, ...] = ()  # categorical: the values, id = position
    mean: float = 0.0  # numeric: the training split's mean and std, to scale it
    std: float = 1.0

    @property
    def categorical(self) -> bool:
        return bool(self.vocabulary)

    def to_json(self) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.categorical:
            entry["vocabulary"] = list(self.vocabulary)
        else:
            entry.update(mean=self.mean, std=self.std)
        return entry

    @classmethod
    def from_json(cls, entry: Dict[str, Any], *, source: str) -> "Covariate":
        try:
            kind = entry["kind"]
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
            vocabulary = tuple(str(v) for v in entry.get("vocabulary", ()))
            return cls(name=str(entry["name"]), kind=kind, vocabulary=vocabulary,
                       mean=float(entry.get("mean", 0.0)), std=float(entry.get("std", 1.0)) or 1.0)
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"{source}: covariate entry {entry!r} is not valid ({error}); it "
                              "needs a name and a kind (past, future or static)") from None


def split_names(text: str) -> List[str]:
    """'a, b' -> ['a', 'b']."""
    return [name.strip() for name in text.split(",") if name.strip()]


def check_covariate_flags(names: Dict[str, List[str]], *, reserved: Sequence[str]) -> None:
    """No column twice, and none of the timestamp or target columns; a ConfigError."""
    seen: Dict[str, str] = {}
    for kind in KINDS:
        for name in names.get(kind, []):
            if name in seen:
                raise ConfigError(f"column {name!r} is given as a {seen[name]} and as a {kind} "
                                  "covariate; give each column once")
            if name in reserved:
                raise ConfigError(f"--{kind}_covariates {name!r} is the timestamp or target column; "
                                  "a covariate is another column")
            seen[name] = kind


def _number(text: str) -> Optional[float]:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def encode_covariates(series_list: Sequence[Series], names: Dict[str, List[str]], *,
                      codes: Sequence[np.ndarray], path: str, series_id_column: str = "",
                      calendar: Sequence[str] = ()) -> Tuple[List[Covariate], List[np.ndarray]]:
    """Check and encode the covariates of every series: (covariates in column order, each
    series' values [points, covariates] as float64, a categorical one as its id).

    `series.extra` holds each column's text (`trainer.data.series.read_series`); a static
    covariate named like the series id column takes the series ids. `codes` (the split codes)
    pick the training points whose mean and std scale each numeric covariate. `calendar`
    names calendar features (`CALENDAR_FEATURES`) computed from the timestamps, added as future
    covariates after the given ones.
    """
    covariates: List[Covariate] = []
    columns: List[List[np.ndarray]] = []
    for kind in ("past", "future"):
        for name in names.get(kind, []):
            for series in series_list:
                empty = np.flatnonzero(series.extra[name] == "")
                if len(empty):
                    raise DataError(
                        f"line {series.lines[empty[0]]} of {path} (series {series.series_id!r}): "
                        f"{kind} covariate {name!r} is empty; fill it")
            numbers = [np.array([_number(cell) for cell in series.extra[name].tolist()],
                                dtype=object) for series in series_list]
            is_number = [values != None for values in numbers]  # noqa: E711 (elementwise)
            if any(mask.all() != mask.any() for mask in is_number) or \
                    len({bool(mask.all()) for mask in is_number}) > 1:
                series, mask = next((series, mask) for series, mask in zip(series_list, is_number)
                                    if not mask.all())
                row = int(np.flatnonzero(~mask)[0])
                raise DataError(
                    f"line {series.lines[row]} of {path} (series {series.series_id!r}): {kind} "
                    f"covariate {name!r} is {series.extra[name][row]!r}, not a number, while other "
                    "values of the column are numbers; fix it (a column of words only is taken as "
                    "categorical)")
            if all(mask.all() for mask in is_number):
                per_series = [values.astype(np.float64) for values in numbers]
                train = np.concatenate([v[c == SPLIT_CODES["train"]]
                                        for v, c in zip(per_series, codes)])
                covariates.append(Covariate(name=name, kind=kind, **_mean_std(train)))
            else:  # a category per step: ids of a vocabulary of every value of the column
                vocabulary = tuple(sorted({str(cell) for series in series_list
                                           for cell in series.extra[name].tolist()}))
                position = {value: index for index, value in enumerate(vocabulary)}
                per_series = [np.array([position[str(cell)] for cell in series.extra[name].tolist()],
                                       dtype=np.float64) for series in series_list]
                covariates.append(Covariate(name=name, kind=kind, vocabulary=vocabulary))
            columns.append(per_series)
    for feature in calendar:
        per_series = [CALENDAR_FEATURES[feature](series.times) for series in series_list]
        train = np.concatenate([v[c == SPLIT_CODES["train"]] for v, c in zip(per_series, codes)])
        covariates.append(Covariate(name=feature, kind="future", **_mean_std(train)))
        columns.append(per_series)
    for name in names.get("static", []):
        values = []
        for series in series_list:
            if name == series_id_column and name not in series.extra:
                values.append(series.series_id)
                continue
            text = series.extra[name]
            different = np.flatnonzero(text != text[0])
            if len(different):
                row = different[0]
                raise DataError(
                    f"series {series.series_id!r} of {path}: static covariate {name!r} changes "
                    f"within the series ({text[0]!r} on line {series.lines[0]}, {text[row]!r} on "
                    f"line {series.lines[row]}); a static covariate has one value per series "
                    "(give it as a past or future covariate instead)")
            if not text[0]:
                raise DataError(f"line {series.lines[0]} of {path} (series {series.series_id!r}): "
                                f"static covariate {name!r} is empty; fill it")
            values.append(str(text[0]))
        numbers = [_number(value) for value in values]
        if name != series_id_column and all(number is not None for number in numbers):
            train_series = [n for n, c in zip(numbers, codes) if (c == SPLIT_CODES["train"]).any()]
            covariate = Covariate(name=name, kind="static",
                                  **_mean_std(np.array(train_series or numbers, dtype=np.float64)))
            encoded = numbers
        else:
            vocabulary = tuple(sorted(set(values)))
            covariate = Covariate(name=name, kind="static", vocabulary=vocabulary)
            encoded = [float(vocabulary.index(value)) for value in values]
        covariates.append(covariate)
        columns.append([np.full(len(series.values), value) for series, value
                        in zip(series_list, encoded)])
    matrices = [np.stack([column[index] for column in columns], axis=1) if columns
                else np.zeros((len(series.values), 0)) for index, series in enumerate(series_list)]
    return covariates, matrices


def _mean_std(values: np.ndarray) -> Dict[str, float]:
    if not len(values):
        return {"mean": 0.0, "std": 1.0}
    std = float(values.std())
    return {"mean": float(values.mean()), "std": std if std > 0 else 1.0}


def covariates_of(summary: Dict[str, Any], *, source: str) -> List[Covariate]:
    """The covariates a prepare.json describes, in column order (none when it has none)."""
    return [Covariate.from_json(entry, source=source) for entry in summary.get("covariates", [])]


def forecast_covariates(series: Series, covariates: Sequence[Covariate], *, end: int,
                        n_inputs: int, horizon: Dict[str, Any], path: str
                        ) -> Dict[str, np.ndarray]:
    """The covariate inputs of one forecast (`trainer.model.serving` names and shapes, without
    the batch): the past and future covariates of the `n_inputs` points before `end`, then the
    future ones of the `horizon` (its "times", "lines" and "extra" texts, one per step), the
    static ones and the categories as vocabulary ids. A DataError names the line of a value
    that is not a number and a category the model never saw."""
    def numbers(texts: np.ndarray, lines: Sequence[int], covariate: Covariate) -> np.ndarray:
        values = []
        for text, line in zip(texts.tolist(), lines):
            value = _number(text)
            if value is None:
                raise DataError(f"line {line} of {path} (series {series.series_id!r}): "
                                f"{covariate.kind} covariate {covariate.name!r} is {text!r}, not a "
                                "number; fill or fix it")
            values.append(value)
        return np.array(values, dtype=np.float64)

    def ids(texts: np.ndarray, lines: Sequence[int], covariate: Covariate) -> np.ndarray:
        position = {value: index for index, value in enumerate(covariate.vocabulary)}
        values = []
        for text, line in zip(texts.tolist(), lines):
            if text not in position:
                raise DataError(f"line {line} of {path} (series {series.series_id!r}): "
                                f"{covariate.kind} covariate {covariate.name!r} is {text!r}, which "
                                "the model never saw (its values: "
                                f"{', '.join(covariate.vocabulary[:10])}"
                                f"{', ...' if len(covariate.vocabulary) > 10 else ''})")
            values.append(position[text])
        return np.array(values, dtype=np.int64)

    begin = end - n_inputs
    past_lines = list(series.lines[begin:end])
    columns: Dict[str, List[np.ndarray]] = {key: [] for key in COVARIATE_KEY.values()}
    for covariate in covariates:
        if covariate.name in CALENDAR_FEATURES:
            times = np.concatenate([series.times[begin:end], horizon["times"]])
            columns[COVARIATE_KEY["future", False]].append(CALENDAR_FEATURES[covariate.name](times))
        elif covariate.kind in ("past", "future"):
            encode = ids if covariate.categorical else numbers
            history = encode(series.extra[covariate.name][begin:end], past_lines, covariate)
            if covariate.kind == "future":
                ahead = encode(horizon["extra"][covariate.name], horizon["lines"], covariate)
                history = np.concatenate([history, ahead])
            columns[COVARIATE_KEY[covariate.kind, covariate.categorical]].append(history)
        else:
            text = (series.series_id if covariate.name not in series.extra
                    else str(series.extra[covariate.name][end - 1]))
            if covariate.categorical:
                if text not in covariate.vocabulary:
                    raise DataError(f"series {series.series_id!r} of {path}: static covariate "
                                    f"{covariate.name!r} is {text!r}, which the model never saw "
                                    f"(it knows {', '.join(covariate.vocabulary[:10])}"
                                    f"{', ...' if len(covariate.vocabulary) > 10 else ''})")
                columns[COVARIATE_KEY["static", True]].append(
                    np.array(covariate.vocabulary.index(text)))
            else:
                value = _number(text)
                if value is None:
                    raise DataError(f"series {series.series_id!r} of {path}: static covariate "
                                    f"{covariate.name!r} is {text!r}, not a number")
                columns[COVARIATE_KEY["static", False]].append(np.array(value))
    return {key: np.stack(parts, axis=-1).astype(np.int64 if key in ID_KEYS else np.float64)
            for key, parts in columns.items() if parts}
