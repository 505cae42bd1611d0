"""Training. `runtime`: what every trainer shares (seeds, threads, checks, the optimizer step with
clipping, schedules, chunked scoring, model selection, checkpoint files, the diverged-run result,
progress) and the one loop `fit`; `packed`: K runs stepped as one computation with per-run rates
and state. `members`: the linear RNN's kernel-regime trainer (stacked runs through `packed`), and
`compare`: the linear RNN trained beside its infinite-width kernel."""
