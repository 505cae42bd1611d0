"""The papers' figures, one module per experiment, grouped by paper (`linear/` for the implicit
bias of linear RNNs). The registry (`numerics.pipeline.registry`) lists them."""
