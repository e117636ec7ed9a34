"""The model search: many ordinary training runs, scored on the backtest windows and combined
into one ensemble (`forecast auto`). It sits above the run wiring and calls it as a user would."""
