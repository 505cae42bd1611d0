"""Paper 2, the eigen view of RNN memory (Dou & Principe 2023): figures E1–E3.

    E1  bench.py    initializers × cells × tasks: final metric, steps to threshold, learning curves
    E2  spectra.py  eigenvalue clouds before and after training, regression against classification
    E3  memory.py   memory curves of each initializer, theory (modal derivation) against networks
"""
