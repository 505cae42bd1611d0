"""What a long computation shows on a terminal: a progress bar on stderr (stdout may carry JSON)."""
from __future__ import annotations

import sys

import click


class ProgressBar:
    """A progress bar on stderr (stdout may carry JSON), drawn from the first update on so that
    input errors found before any work stay one line. Only on a terminal: elsewhere (a pipe, a
    batch job's log) click could print nothing but the label, and an error stays one line."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.bar = total, label, None
        self.shown = sys.stderr.isatty()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, *args):
        if not self.shown:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=self.total, label=self.label, file=sys.stderr, show_eta=True)
            self.bar.__enter__()
        # progress(k) from a sweep counts k finished cells; trainers call progress(name, step, steps).
        self.bar.update(args[0] if len(args) == 1 and isinstance(args[0], int) else 1)
