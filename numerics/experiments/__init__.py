"""The papers' figures, one module per experiment, grouped by paper: `linear/` (implicit bias of
linear RNNs, F1–F9), `eigen/` (the eigen view and initializer, E1–E3), `plrnn/` (regularized
piecewise-linear RNNs, P1–P4, R1–R3). `registry` lists them for the pipeline."""
