"""Paper 3, regularized piecewise-linear RNNs (Schmidt et al., ICLR 2021): figures P1–P4, R1–R3.

    P1  long_range.py  fraction correct against T per model on the addition (and multiplication) problem
    P2  regularization.py  the regularization strength τ (and the fraction p) where T is long enough to matter
    P3  analysis.py    eigenvalues at the trained models' fixed points: line attractors or not
    P4  analysis.py    Jacobian-product norms over T against the derived bounds
    R1  reconstruction.py  reconstructing Lorenz-63 and a bursting neuron: attractors, spectra, measures
    R2  tau_sweep.py   the regularization strength τ and the bursting neuron's slow time scale
    R3  analysis.py    fixed points and line attractors of the reconstruction models
"""
