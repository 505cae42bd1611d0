"""The rPLRNN paper's numerics: the piecewise-linear RNN with its line-attractor regularizer and the
baselines (`model`), its recurrence with a hand-written backward pass (`recurrence`), one training
run on a long-range task (`train`), generative models of a dynamical system (`generators`) and their
training by sparse teacher forcing (`reconstruct`), the evaluation of trained models through the
derived, emitted functions (`regions`: regions, fixed points, cycles, Jacobian products) and the
training-step timing (`speed`). Names of tasks and models: `names` (torch-free). The tasks
themselves are in `numerics.data.long_range`; the systems in `numerics.dynamics`."""
