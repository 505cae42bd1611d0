"""Dynamical-system reconstruction (the rPLRNN paper, part 2; docs/theory.md, paper 3): the
systems and data to learn from (`systems`) and the measures of how faithful a generated trajectory
is (`measures`). Numpy and scipy only; dysts is used where installed.

    simulate(system, *, dt, length, transient, noise, seed, zscore) → Series     'lorenz63', 'bursting', dysts names
    load_series(path, *, dt, min_length, zscore) → Series                        .npy / .csv, (time, variables)
    parse_system(text, *, dt, length, noise, transient, min_length) → SystemSpec; make_series(spec) → Series
    state_space_kl_binned, state_space_kl_gmm, spectrum_mse, hellinger_spectrum,
    lyapunov_from_jacobians, lyapunov_from_ode, prediction_horizon               (true, generated) → number
"""
from .measures import (
    amplitude_spectrum,
    hellinger_spectrum,
    lyapunov_from_jacobians,
    lyapunov_from_ode,
    lyapunov_spectrum_from_jacobians,
    prediction_horizon,
    spectrum_mse,
    state_space_kl_binned,
    state_space_kl_gmm,
)
from .systems import (
    BUILTIN,
    Series,
    System,
    SystemSpec,
    get_system,
    hindmarsh_rose,
    load_series,
                       lorenz63,
    make_series,
    parse_system,
    simulate,
)

__all__ = ["BUILTIN", "Series", "System", "SystemSpec", "amplitude_spectrum", "get_system", "hellinger_spectrum",
           "hindmarsh_rose", "load_series", "lorenz63", "lyapunov_from_jacobians", "lyapunov_from_ode",
           "lyapunov_spectrum_from_jacobians", "make_series", "parse_system", "prediction_horizon", "simulate",
           "spectrum_mse", "state_space_kl_binned", "state_space_kl_gmm"]
