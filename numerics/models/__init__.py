"""Networks: the spec-built linear RNN (`linear`) and its infinite-width equivalent (`convolution`)."""
