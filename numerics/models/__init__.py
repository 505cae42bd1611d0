"""Networks: the spec-built linear RNN (`linear`), the samplers of its W per initializer family
(`families`), its infinite-width equivalent (`convolution`), and initializers for torch's own
nn.RNN/LSTM/GRU gate blocks (`initializers`)."""
