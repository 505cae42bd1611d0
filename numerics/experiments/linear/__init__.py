"""Paper 1, the implicit bias of linear RNNs: figures F1–F9.

    F1, F2  kernel.py         lag weights α_j at initialization; their convergence with width
    F3      curves.py         training dynamics: RNN, scaled convolution, closed form
    F4, F5  bias_variance.py  learned responses; test error against σ_W for teachers of growing memory
    F6      sunspots.py       the same on real data (yearly sunspot numbers)
    F7      regime.py         where the kernel regime holds, over width n and length T
    F8      lag_kernels.py    the lag kernel Θ_jk of each initializer family of W, theory and networks
    F9      init_training.py  which initializers learn long memory: trained RNNs against Θ's closed form
"""
