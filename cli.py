"""The `rnnmemory` command: a thin Click layer over derivations/ and numerics/.

It parses options, calls library functions and prints; no mathematics lives here. Bad input
ends in one line on stderr and exit code 2. docs/commands.md is generated from the help texts.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import sys
from pathlib import Path

import click

from derivations import spec as specs
from derivations.spec import Spec, SpecError
from numerics.pipeline.progress import ProgressBar

MAX_SIGMA = 1e6  # σ's (and λ's) beyond this overflow float64 within a few lags: a typo, not a network
MAX_COUNT = 2 ** 31 - 1  # counts (steps, lags, seeds, samples, lengths) beyond this overflow torch's sizes


class InputError(Exception):
    """Bad input found after option parsing; reported as one line with exit code 2."""


def _input_errors():
    # numerics (and torch) load only for the commands that need them.
    errors = [SpecError, InputError, OSError, ArithmeticError, MemoryError]
    numerics = sys.modules.get("numerics.errors")
    if numerics is not None:
        errors.append(numerics.NumericsError)
    torch = sys.modules.get("torch")
    if torch is not None:
        errors.append(torch.OutOfMemoryError)  # a GPU too small for the run asked for
    return tuple(errors)


class Group(click.Group):
    """A command group whose renamed commands keep their old names as hidden aliases."""

    def __init__(self, *args, aliases: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.aliases = aliases or {}

    def get_command(self, ctx, name):
        return super().get_command(ctx, self.aliases.get(name, name))


class Command(Group):
    def main(self, args=None, prog_name=None, **kwargs):
        Command.invocation = list(sys.argv[1:] if args is None else args)
        try:
            return super().main(args=args, prog_name=prog_name or "rnnmemory", standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.ClickException as e:
            click.echo(f"rnnmemory: error: {e.format_message()}", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("rnnmemory: interrupted", err=True)
            sys.exit(130)
        except RuntimeError as e:
            if "can't allocate memory" not in str(e) and "out of memory" not in str(e):
                raise
            # torch's allocator: a size asked for (samples, length, steps, lags) beyond this machine's memory
            click.echo(f"rnnmemory: error: not enough memory for this run ({str(e).splitlines()[0].split(': ')[-1]}); "
                       "use smaller sizes", err=True)
            sys.exit(2)
        except _input_errors() as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, OSError) and e.strerror:  # "No space left on device: PATH", not "[Errno 28] …"
                message = e.strerror + (f": {e.filename}" if e.filename else "")
            elif isinstance(e, OSError) and e.filename and str(e.filename) not in message:
                message = f"{message}: {e.filename}"
            click.echo(f"rnnmemory: error: {message}", err=True)
            sys.exit(2)


def invocation() -> str:
    """The command line as the user typed it: what every result records."""
    return shlex.join(["rnnmemory", *Command.invocation])


# ---------------------------------------------------------------- option parsers


def _checked(parse):
    """An option callback from a library parser: its one-line error becomes click's."""
    def callback(ctx, param, value):
        try:
            return None if value is None else parse(value)
        except SpecError as error:
            raise click.BadParameter(str(error)) from None
    return callback


def _parse_list(kind, name):
    def parse(ctx, param, value):
        try:
            items = [kind(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a comma-separated list of {name}") from None
        if not items:
            raise click.BadParameter("empty list")
        return items
    return parse


def _positive(ctx, param, value):
    if value is not None and not 1 <= value <= MAX_COUNT:
        raise click.BadParameter(f"must be an integer from 1 to {MAX_COUNT}, got {value}")
    return value


def _non_negative(ctx, param, value):
    for v in value if isinstance(value, list) else [value]:
        if v is not None and not 0 <= v <= MAX_SIGMA:
            raise click.BadParameter(f"must be a number from 0 to {MAX_SIGMA:g}, got {v}", ctx, param)
    return value


def _jobs(ctx, param, value):
    most = 4 * (os.cpu_count() or 1)  # more processes than that only contend for the cores
    if value is not None and not 1 <= value <= most:
        raise click.BadParameter(f"must be from 1 to {most} (4 per CPU core here), got {value}")
    return value


def _options(*options):
    """A decorator applying `options` in order (shared option sets, as sqlite-utils does)."""
    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


_spec_options = _options(
    click.option("--param", type=click.Choice(specs.PARAMETERIZATIONS), default="ntk", show_default=True,
                 help="ntk: tilde parameters with 1/√fan-in; standard: raw parameters at rate η/n."),
    click.option("--convention", type=click.Choice(specs.CONVENTIONS), default="A", show_default=True,
                 help="A: input enters h_k at step k; B: at step k+1 (lag 0 is D alone)."),
    click.option("--feedthrough/--no-feedthrough", default=True, show_default=True, help="Include ŷ_k += D x_k."),
    click.option("--train", "trained", callback=_checked(specs.parse_blocks), default=None, metavar="W,F,C[,D]",
                 help="Blocks trained; the rest are frozen. Default: all."),
    click.option("--rate", "rates", multiple=True, callback=_checked(specs.parse_rates), metavar="BLOCK=RATE",
                 help="Relative learning rate λ of a trained block (repeatable; default 1)."),
    click.option("--symbolic-rates", is_flag=True, help="Keep λ_W, λ_F, λ_C, λ_D as symbols."),
    click.option("--init", "init", default="gaussian", show_default=True, metavar="FAMILY[:key=value,…]",
                 help="Initializer of W: gaussian, orthogonal, identity, nprnn, spectral[:modulus=disk|ring|uniform,"
                      "phase=0..1|file=EIGS.npy], attractor[:p=0.25] or empirical:W.npy; its scale is σ_W."),
)


def spec_options(f):
    """The parameterization options of every command that builds a `Spec`; the command gets `spec`."""
    @functools.wraps(f)
    def command(*, param, convention, feedthrough, trained, rates, symbolic_rates, init, **rest):
        if symbolic_rates and rates:
            raise InputError("--rate and --symbolic-rates exclude each other")
        spec = Spec(param=param, convention=convention, feedthrough=feedthrough, rates=rates, init=init,
                    trained=trained if trained is not None else specs.BLOCKS, symbolic_rates=symbolic_rates)
        return f(spec=spec, **rest)
    return _spec_options(command)


def _numeric(spec: Spec) -> Spec:
    if spec.symbolic_rates:
        raise InputError("checks need numeric rates; drop --symbolic-rates")
    return spec


device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                             help="auto = CUDA when present; cuda without a GPU is an error.")
run_options = _options(
    *[click.option(f"--sigma-{b.lower()}", type=float, default=specs.DEFAULT_SIGMAS[b], show_default=True,
                   callback=_non_negative, help=f"σ_{b}.") for b in ("F", "C", "D")],
    device_option,
    click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True),
    click.option("--seed", type=click.IntRange(0, 2 ** 63 - 1), default=0, show_default=True),
    click.option("--out", type=click.Path(path_type=Path), required=True, help="Result directory."),
    click.option("--force", is_flag=True, help="Overwrite an existing result in --out."),
    click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True),
)


def worker_options(jobs_default):
    """Where cells are computed: --jobs local Dask workers, or --scheduler, an existing cluster."""
    default_text = "one per CPU core; 1 on CUDA" if jobs_default is None else str(jobs_default)
    return _options(
        click.option("--jobs", type=int, default=jobs_default, callback=_jobs,
                     help=f"Worker processes on an embedded Dask LocalCluster (default: {default_text}). "
                          "1 runs in this process, without Dask."),
        click.option("--scheduler", envvar="RNNMEMORY_SCHEDULER", default=None, metavar="tcp://HOST:PORT",
                     help="Send the cells to this Dask scheduler instead (also RNNMEMORY_SCHEDULER)."))


def sweep_options(out_required: bool = True):
    """Where cached cells run: the directory that holds them, the device, and the workers."""
    return _options(
        click.option("--out", type=click.Path(path_type=Path), required=out_required,
                     help="Result directory; its cells/ are reused, so rerunning resumes."),
        device_option, worker_options(None))


def scale_options(default):
    """--quick, --full or --tiny: the sizes of every experiment (each experiment's config for that scale)."""
    return _options(
        click.option("--quick", "scale", flag_value="quick", help="Minutes on a 2-core CPU, few seeds."
                     + (" [default]" if default == "quick" else ""), **({"default": True} if default == "quick" else {})),
        click.option("--full", "scale", flag_value="full", help="Publication scale: a GPU or a Dask cluster."),
        click.option("--tiny", "scale", flag_value="tiny", help="Seconds: every code path, numbers without meaning."))


def plrnn_training_options(*, hidden: int, steps: int | None, batch: int, lr: float, steps_help: str | None = None):
    """How a PLRNN command trains: width, steps, batch, Adam's rate and schedule, the regularizer."""
    return _options(
        click.option("--hidden", type=click.IntRange(1, 4096), default=hidden, show_default=True),
        click.option("--steps", type=int, default=steps, show_default=steps is not None, callback=_positive,
                     help=steps_help),
        click.option("--batch", type=int, default=batch, show_default=True, callback=_positive),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=lr, show_default=True,
                     help="Adam's (peak) rate; the public code: 1e-3."),
        click.option("--schedule", type=click.Choice(["cosine", "constant"]), default="cosine", show_default=True,
                     help="Adam's rate annealed to 0 (cosine) or constant (the public code)."),
        click.option("--p", type=float, default=0.5, show_default=True, help="rplrnn: fraction of regularized units."),
        click.option("--tau", type=float, default=5.0, show_default=True,
                     help="rplrnn: regularization strength τ_A = τ_W."))


def data_dir_option(tasks: str):
    return click.option("--data-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
                        help=f"Directory of the four MNIST IDX files (train-images-idx3-ubyte, …, plain or .gz); "
                             f"needed by {tasks}. Nothing is downloaded.")


# ---------------------------------------------------------------- progress, workers, sweeps


def _sweep_setup(device, jobs, scheduler):
    """The device and the local workers. With a scheduler the workers resolve the device: a login
    node without a GPU can send cells to GPU workers."""
    from numerics.device import resolve_device

    if scheduler:
        return device, 1
    device = resolve_device(device).type
    return device, jobs or (1 if device == "cuda" else max(1, os.cpu_count() or 1))


@contextlib.contextmanager
def _resumable(out):
    """On Ctrl-C, say that the finished cells are kept before the usual one-line exit."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"\nrnnmemory: finished cells are kept in {out}/cells; rerun the same command to resume", err=True)
        raise click.Abort() from None


def _registry():
    from numerics.experiments.registry import REGISTRY

    return REGISTRY


def _run_sweep(name: str, config, out, stem: str, *, unit: str = "runs", device, jobs, scheduler, context=None) -> None:
    """One experiment at the command's own config, its cells cached in OUT/cells: run it, print its
    table, the counts and the files written."""
    from numerics.pipeline.reproduce import run_config

    device, jobs = _sweep_setup(device, jobs, scheduler)
    registry = _registry()
    with _resumable(out), ProgressBar(len(registry.experiment(name).cells(config)), unit) as progress:
        done = run_config(registry, name, config, out, command=invocation(), stem=stem, device=device, jobs=jobs,
                          scheduler=scheduler, progress=progress, context=context)
    if done["table"] is not None:
        click.echo(done["table"])
    counts = done["counts"]
    click.echo(f"{counts['total']} {unit} ({counts['computed']} computed, {counts['reused']} reused) in "
               f"{done['wall_seconds']:.0f} s on {device} with " + (scheduler or f"{jobs} job(s)"))
    for path in done["written"]:
        click.echo(path)


# ---------------------------------------------------------------- commands


@click.group(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnmemory", message="%(prog)s %(version)s")
def main():
    """Closed-form memory bias of linear RNNs, checked against trained networks; the eigen view of
    RNN memory; regularized piecewise-linear RNNs."""


@main.command()
@spec_options
@click.option("--format", "fmt", type=click.Choice(["text", "latex", "json"]), default="text", show_default=True)
@click.option("--eval", "point", callback=_checked(specs.parse_point), default=None,
              metavar="sigma_W=0.8,sigma_F=1,...",
              help="Evaluate at these σ (and λ with --symbolic-rates); σ_F, σ_C, σ_D default 1.")
@click.option("--lags", callback=_checked(specs.parse_lags), default=None, metavar="START:STOP",
              help="Lags to evaluate with --eval (STOP excluded; default 0:12); with --order 1 the 1/n terms "
                   "at lags 0 … STOP−1 (default 3, at most 4: they are enumerated exactly).")
@click.option("--order", type=click.IntRange(0, 1), default=0, show_default=True,
              help="1: also the exact 1/n terms of the lag kernel at finite width n (convention A, NTK "
                   "parameterization, Gaussian W): its mean at initialization and its mean change after one "
                   "gradient step.")
def derive(spec, fmt, point, lags, order):
    """Derive the lag weights α_j of the wide-limit NTK for a parameterization.

    Example: rnnmemory derive --convention B --train W,C --eval sigma_W=0.8 --lags 0:6

    Example: rnnmemory derive --order 1 --lags 0:3
    """
    from derivations import describe

    if order == 1:  # checked first: a spec the 1/n terms do not cover fails before anything prints
        width = describe.finite_width_output(spec, fmt, 3 if lags is None else lags.stop)
    wide = describe.derive_output(spec, fmt, point, range(12) if lags is None else lags)
    if order == 1 and fmt == "json":
        import json

        click.echo(json.dumps({**json.loads(wide), "order_1": json.loads(width)}, indent=2))
    else:
        click.echo(wide + ("\n\n" + width if order == 1 else ""))


@main.command()
@spec_options
@click.option("--content", type=click.Choice(["lag-weights", "finite-width", "plrnn"]), default="lag-weights",
              show_default=True,
              help="lag-weights: α_j (or Θ_jk) of the spec; finite-width: the exact 1/n terms of the lag kernel at "
                   "lags 0-2 (as derive --order 1); plrnn: the PLRNN's region Jacobian, fixed point and "
                   "Jacobian-product bounds (numpy, latex).")
@click.option("--target", type=click.Choice(["numpy", "torch", "latex", "c"]), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write into.")
def emit(spec, content, target, out):
    """Write code generated from the derived expressions (numpy, torch, LaTeX or C).

    Example: rnnmemory emit --target c --out build/

    Example: rnnmemory emit --content plrnn --target latex --out build/

    Example: rnnmemory emit --content finite-width --target numpy --out build/
    """
    from derivations.emit import render
    from numerics.io import write_files

    for path in write_files(out, render(content, target, spec)):  # everything is rendered before a file is written
        click.echo(str(path))


@main.group()
def check():
    """Check the derived theory against finite-width linear RNNs.

    Example: rnnmemory check ntk --width 256,1024 --sigma-w 0.8 --out results/ntk
    """


def _widths(ctx, param, value):
    widths = _parse_list(int, "integers")(ctx, param, value)
    if min(widths) < 1:
        raise click.BadParameter(f"must be positive, got {min(widths)}")
    return widths


@check.command("ntk")
@spec_options
@click.option("--width", "widths", callback=_widths, default="256,1024,4096", show_default=True)
@click.option("--sigma-w", "sigma_ws", callback=lambda ctx, param, value: _non_negative(
    ctx, param, _parse_list(float, "numbers")(ctx, param, value)), default="0.5,0.8,0.95", show_default=True)
@click.option("--lags", type=int, default=16, show_default=True, callback=_positive)
@click.option("--seeds", type=int, default=4, show_default=True, callback=_positive)
@worker_options(1)
@run_options
def check_ntk(spec, widths, sigma_ws, lags, seeds, jobs, scheduler, sigma_f, sigma_c, sigma_d, device, dtype, seed, out,
              force, fmt):
    """Empirical NTK lag weights at initialization against the derived α_j.

    Each random network is a cell cached in OUT/cells (the cells of figures F1 and F2), so a rerun
    with more widths or seeds computes only the new ones.

    Example: rnnmemory check ntk --width 256,1024,4096 --sigma-w 0.8 --lags 16 --seeds 8 --out results/ntk
    """
    from numerics import checks
    from numerics.io import to_json

    spec, sigmas = _numeric(spec), {"F": sigma_f, "C": sigma_c, "D": sigma_d}
    with _resumable(out), ProgressBar(len(set(widths)) * len(set(sigma_ws)) * seeds, "tangent Grams") as progress:
        record, path = checks.ntk_command(spec, widths, sigma_ws, lags, seeds, out, force=force, sigmas=sigmas,
                                          device=device, dtype=dtype, seed=seed, jobs=jobs, scheduler=scheduler,
                                          progress=progress, command=invocation())
    click.echo(to_json(record) if fmt == "json" else checks.ntk_text(record, path))


@check.command("train")
@spec_options
@click.option("--teacher", default="decay:0.9", show_default=True,
              help="decay:ρ, delay:k, resonant:r,θ, lti:DIM[,ρ] (ρ < 1) or file:PATH (.npy/.csv real impulse response).")
@click.option("--width", type=int, default=1024, show_default=True, callback=_positive)
@click.option("--sigma-w", type=float, default=0.7, show_default=True, callback=_non_negative)
@click.option("--steps", type=int, default=2000, show_default=True, callback=_positive)
@click.option("--samples", type=int, default=20, show_default=True, callback=_positive)
@click.option("--length", type=int, default=40, show_default=True, callback=_positive, help="Sequence length T.")
@click.option("--task", type=click.Choice(["seq2one", "seq2seq"]), default="seq2one", show_default=True)
@click.option("--optimizer", type=click.Choice(["gd", "sgd", "adam"]), default="gd", show_default=True)
@click.option("--lr", default="auto", show_default=True, help="A step size, or auto (from the kernel's largest eigenvalue).")
@click.option("--center/--no-center", default=False, show_default=True, help="Subtract the initial function.")
@click.option("--lazy-scale", type=float, default=1.0, show_default=True,
              help="Multiply the output by A and divide the loss by A² (lazy training; 1e-6 ≤ A ≤ 1e6, and A > 1e3 "
                   "needs --center).")
@click.option("--kernel", type=click.Choice(["theory", "empirical"]), default="theory", show_default=True,
              help="Lag kernel of the scaled convolution: derived (α_j for Gaussian W, full Θ_jk otherwise), or this "
                   "network's tangent Gram.")
@run_options
def check_train(spec, lr, out, force, fmt, **options):
    """Train the RNN, its scaled convolution and the closed form from one initial function.

    Example: rnnmemory check train --teacher decay:0.5 --sigma-w 0.5 --width 2048 --center --out results/train
    """
    from numerics import checks
    from numerics.io import to_json

    spec = _numeric(spec)
    if lr != "auto":
        try:
            lr = float(lr)
        except ValueError:
            raise InputError(f"--lr must be a number or auto, got {lr!r}") from None
    options["lr"] = lr
    with ProgressBar(2 * (options["steps"] + 1), "training") as progress:
        record, path = checks.train_command(spec, options, out, force=force, progress=progress, command=invocation(),
                                            warn=lambda text: click.echo(f"rnnmemory: warning: {text}", err=True))
    click.echo(to_json(record["final"]) if fmt == "json" else checks.train_text(record, path))


@check.command("motion")
@click.option("--teacher", default="decay:0.9", show_default=True, help="As check train.")
@click.option("--width", "widths", callback=_widths, default="256,512,1024", show_default=True)
@click.option("--sigma-w", type=float, default=0.5, show_default=True, callback=_non_negative)
@click.option("--steps", type=int, default=150, show_default=True, callback=_positive,
              help="Gradient-descent steps at the wide limit's automatic step (centered, as F3).")
@click.option("--seeds", type=click.IntRange(2, 1000), default=3, show_default=True,
              help="Networks per width (at least 2: the verdict needs their spread).")
@click.option("--lags", type=click.IntRange(1, 64), default=16, show_default=True)
@click.option("--samples", type=int, default=20, show_default=True, callback=_positive)
@click.option("--length", type=int, default=40, show_default=True, callback=_positive, help="Sequence length T.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Result directory.")
@click.option("--force", is_flag=True, help="Overwrite an existing result in --out.")
def check_motion(out, force, **options):
    """How far training moves the lag kernel, by lag and width: n·(Θ_jj(t)/Θ_jj(0) − 1), the same at
    every width where a 1/n expansion holds; with each run's spectral radius of W before and after.
    The default spec (NTK, convention A, every block trained), whose 1/n terms are derived.

    Example: rnnmemory check motion --sigma-w 0.5 --width 512,1024,2048 --out results/motion
    """
    from numerics import checks

    with ProgressBar(len(options["widths"]) * options["seeds"], "networks") as progress:
        record, path = checks.motion_command(options, out, force=force, progress=progress,
                                             command=invocation())
    click.echo(checks.motion_text(record, path))


@main.command()
@scale_options("quick")
@sweep_options(out_required=False)
@click.option("--plan", is_flag=True, help="Print the cells and the estimated CPU and GPU time per figure, run "
              "nothing (rates from OUT's cells when it has some, else the reference CPU's).")
def reproduce(scale, out, device, jobs, scheduler, plan):
    """Rederive, recompute and redraw everything: every figure (PNG, PDF and its data as CSV), the
    report (OUT/report.html, the summary, and one OUT/report-PAPER.html per paper; OUT/report.md)
    and OUT/claims.csv.

    Every run is a cell cached under OUT/cells; an interrupted run resumes where it stopped.
    With --jobs N > 1 the cells run on an embedded Dask LocalCluster; with --scheduler on an
    existing Dask cluster (see docs/commands.md for Slurm and GPUs).

    Example: rnnmemory reproduce --quick --out results/paper
    """
    from numerics.pipeline import reproduce as pipeline

    registry = _registry()
    if plan:
        from numerics.pipeline import plan as planner

        rates, source = planner.rates_for(registry, out if out is not None and out.is_dir() else None)
        click.echo(planner.plan_table(planner.plan(registry, scale, rates), jobs or max(1, os.cpu_count() or 1), source))
        return
    if out is None:
        raise InputError("--out is required (the result directory), except with --plan")
    device, jobs = _sweep_setup(device, jobs, scheduler)
    with _resumable(out), ProgressBar(pipeline.count_cells(registry, scale), "cells") as progress:
        summary = pipeline.reproduce(registry, out, scale, device=device, jobs=jobs, scheduler=scheduler,
                                     progress=progress, command=invocation())
    cells = summary["cells"]
    click.echo(f"{cells['total']} cells ({cells['computed']} computed, {cells['reused']} reused) in "
               f"{summary['wall_seconds']:.0f} s on {device} with " + (scheduler or f"{jobs} job(s)"))
    for path in summary["report"]:
        click.echo(path)


@main.command()
@click.argument("name", required=False)
@click.option("--list", "listing", is_flag=True, help="List the figures the registry knows and exit (no --out needed).")
@scale_options(None)
@sweep_options(out_required=False)
def figure(name, listing, scale, out, device, jobs, scheduler):
    """Redraw one figure (F1, F2, …; --list names them all), computing only the cells it lacks.

    Example: rnnmemory figure F5 --out results/paper
    """
    from numerics.pipeline import reproduce as pipeline

    registry = _registry()
    if listing:
        for exp in registry.experiments.values():
            click.echo(f"{exp.name}  {exp.title}")
        return
    if name is None:
        raise InputError(f"name a figure ({', '.join(registry.experiments)})")
    if out is None:
        raise InputError("--out is needed: the result directory whose cells the figure uses")
    registry.experiment(name)
    device, jobs = _sweep_setup(device, jobs, scheduler)
    recorded = pipeline.load_scale(out)
    if recorded is not None and scale is not None and recorded != scale:
        raise InputError(f"{out} holds a {recorded} run; drop --{scale} or use another --out")
    scale = recorded or scale or "quick"
    with _resumable(out), ProgressBar(pipeline.count_cells(registry, scale, [name]), "cells") as progress:
        path = pipeline.make_figure(registry, name, scale, out, device=device, jobs=jobs, scheduler=scheduler,
                                    progress=progress)
    click.echo(str(path / f"{name}.png"))


@main.group(cls=Group, aliases={"bench": "initializers"})
def eigen():
    """The eigen view of paper 2: spectra of recurrent modules and their initializers."""


@eigen.command("spectrum")
@click.option("--cell", type=click.Choice(["rnn", "lstm", "gru"]), default="lstm", show_default=True)
@click.option("--init", "init_name", type=click.Choice(["xavier", "kaiming", "orthogonal", "identity", "nprnn",
                                                        "spectral"]), default="orthogonal", show_default=True,
              help="Initializer applied to every gate block of weight_hh.")
@click.option("--hidden", type=click.IntRange(1, 4096), default=64, show_default=True)
@click.option("--seed", type=click.IntRange(0, None), default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write into.")
@click.option("--force", is_flag=True, help="Overwrite an existing result.")
def eigen_spectrum(cell, init_name, hidden, seed, out, force):
    """Eigenvalues of a freshly initialized torch RNN/LSTM/GRU on the unit disk: every gate block,
    and for a gated cell the Jacobian of its step at the origin (derived in derivations/gated.py).

    Example: rnnmemory eigen spectrum --cell gru --init orthogonal --hidden 64 --out results/spectrum
    """
    from numerics.eigen.spectrum import write_fresh_spectrum

    for path in write_fresh_spectrum(cell, init_name, hidden, seed, out, force=force, command=invocation()):
        click.echo(str(path))


@eigen.command("initializers")
@click.option("--task", "tasks", callback=_parse_list(str, "tasks"), default="tomita:3,digits", show_default=True,
              help="tomita:N (N = 1…7), digits, recall:D, mnist or pmnist (pixel-by-pixel and permuted MNIST: "
                   "need --data-dir), multi30k (English→German, test BLEU; gru and lstm only: needs "
                   "--multi30k-dir), comma-separated.")
@click.option("--cell", "cells", callback=_parse_list(str, "cells"), default="rnn,lstm,gru", show_default=True)
@click.option("--init", "inits", callback=_parse_list(str, "initializers"),
              default="xavier,kaiming,orthogonal,irnn,nprnn,eigen", show_default=True,
              help="irnn is a ReLU vanilla RNN with identity recurrence (skipped on lstm, gru); eigen reads "
                   "--spectrum.")
@click.option("--seeds", type=int, default=3, show_default=True, callback=_positive)
@click.option("--steps", type=int, default=None, callback=_positive,
              help="Training steps of every run (default: each task's own, e.g. 600 on Tomita, 1500 on digits, "
                   "3000 on multi30k).")
@click.option("--hidden", type=click.IntRange(1, 4096), default=None,
              help="Hidden size of every network (default: 32; multi30k's encoder–decoder 256).")
@click.option("--embed", type=click.IntRange(1, 4096), default=None, help="multi30k's word-embedding size (default: 128).")
@click.option("--spectrum", default=None, metavar="FILE.npy",
              help="The eigen initializer's spectrum file for every cell (default: each cell's committed law, "
                   "numerics/eigen/spectra/CELL.npy).")
@data_dir_option("mnist and pmnist")
@click.option("--multi30k-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Directory of the Multi30k text files (train, val, test_2016_flickr .en/.de, plain or .gz); "
                   "needed by multi30k. Nothing is downloaded.")
@click.option("--train-subset", type=int, default=None, callback=_positive, metavar="N",
              help="MNIST and multi30k runs train on N of their training images or sentence pairs (a fixed "
                   "seeded choice), e.g. on a CPU.")
@sweep_options()
def eigen_initializers(tasks, cells, inits, seeds, steps, hidden, embed, spectrum, data_dir, multi30k_dir,
                       train_subset, out, device, jobs, scheduler):
    """Figure E1's benchmark (alias: eigen bench): train every initializer × cell × task over seeds;
    final test metric (mean ± sd), steps to a threshold and learning curves. Each run is a cell
    cached in OUT/cells, so a rerun resumes and a larger benchmark reuses the runs it shares; writes
    OUT/result.json, OUT/bench.png and OUT/table.txt.

    Example: rnnmemory eigen initializers --task tomita:3,digits --cell rnn,lstm,gru --init xavier,irnn,eigen --seeds 3 --out results/bench

    Example: rnnmemory eigen initializers --task mnist,pmnist --cell rnn,lstm --init xavier,irnn --data-dir ~/data/mnist --out results/mnist

    Example: rnnmemory eigen initializers --task multi30k --cell gru,lstm --init xavier,orthogonal,eigen --multi30k-dir ~/data/multi30k --device cuda --out results/multi30k
    """
    from numerics.experiments.eigen import bench

    config = bench.command_config(tasks, cells, inits, seeds, steps=steps, hidden=hidden, embed=embed,
                                  spectrum=spectrum, data_dir=data_dir, multi30k_dir=multi30k_dir,
                                  train_subset=train_subset)
    _run_sweep("E1", config, out, "bench", unit="runs", device=device, jobs=jobs,
               scheduler=scheduler)


@eigen.command("fit")
@click.option("--task", "tasks", callback=_parse_list(str, "tasks"), default="tomita:2,tomita:4,tomita:7",
              show_default=True, help="Classification tasks whose well-trained networks give the spectra (the "
              "committed laws: grammars E1's quick scale does not use).")
@click.option("--cell", type=click.Choice(["rnn", "rnn-relu", "lstm", "gru"]), default="rnn", show_default=True)
@click.option("--seeds", type=int, default=4, show_default=True, callback=_positive)
@click.option("--data-seed", type=click.IntRange(0), default=1, show_default=True,
              help="The fitting data's seed; E1 trains and tests on data seed 0, so the default keeps the fit off it.")
@click.option("--init", "init_name", default="xavier", show_default=True, help="Initializer of the networks trained.")
@click.option("--hidden", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--blocks", type=click.Choice(["candidate", "all"]), default=None,
              help="candidate: the block that carries the state (h, LSTM g, GRU n); all: every gate block "
                   "(default: candidate for rnn, all for a gated cell, as the committed laws).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The spectrum file to write (.npy).")
def eigen_fit(tasks, cell, seeds, data_seed, init_name, hidden, blocks, out):
    """Fit an eigenvalue law to well-trained networks and write a spectrum file for --init eigen /
    spectral:file=. The toolkit's reconstruction of the paper's procedure (its construction is unknown).

    Example: rnnmemory eigen fit --task tomita:2,tomita:4 --cell gru --seeds 4 --out gru_law.npy
    """
    from numerics.eigen.fit_initializer import fit_from_training, initialized_radius, law_text

    blocks = blocks or ("candidate" if cell.startswith("rnn") else "all")
    done = fit_from_training(tasks, cell, range(seeds), init=init_name, hidden=hidden, blocks=blocks,
                             data_seed=data_seed, out_path=str(out), provenance={"command": invocation()},
                             progress=lambda run: click.echo(json.dumps(run), err=True) if sys.stderr.isatty() else None)
    radius = initialized_radius(out, cell, hidden)
    click.echo(law_text(done) + f"\nspectral radius of an initialized {cell} block (hidden {hidden}, "
               f"{radius['draws']} draws): median {radius['median']:.3g}, from {radius['min']:.3g} to {radius['max']:.3g}")


@main.group(cls=Group, aliases={"bench": "long-range"})
def plrnn():
    """Paper 3: regularized piecewise-linear RNNs (rPLRNN) on long-range problems and dynamical systems."""


@plrnn.command("reconstruct")
@click.option("--system", "systems", callback=_parse_list(str, "systems"), default="lorenz63", show_default=True,
              help="lorenz63, bursting (Hindmarsh–Rose), any dysts system name (pip install dysts), or "
                   "data:FILE (.npy or .csv, time × variables); comma-separated.")
@click.option("--model", "models", callback=_parse_list(str, "models"), default="rplrnn,plrnn,gru", show_default=True,
              help="rplrnn, plrnn, lstm, gru.")
@click.option("--seeds", type=int, default=1, show_default=True, callback=_positive)
@click.option("--length", type=int, default=6000, show_default=True, callback=_positive, help="Training samples.")
@click.option("--test-length", type=int, default=4000, show_default=True, callback=_positive,
              help="Held-out samples the free-running model is scored against.")
@click.option("--dt", type=float, default=None, help="Sampling step (default: lorenz63 0.05, bursting 0.5, a dysts "
              "system its own, a data file 1).")
@click.option("--noise", type=float, default=0.05, show_default=True,
              help="Observation noise of simulated systems, a fraction of each variable's sd.")
@click.option("--window", type=int, default=None, callback=_positive,
              help="Training window (default: lorenz63 50, bursting and others 100).")
@click.option("--tau-tf", default=None,
              help="Teacher forcing every τ_tf steps (default: lorenz63 5, bursting and others 10), or auto: the "
                   "Lyapunov time in steps where λ_max is known (Lorenz-63, dysts), else the data's autocorrelation time.")
@click.option("--band-edge", type=float, default=None,
              help="Split the spectrum error into a low and a high band at this frequency (cycles per time unit); "
                   "default: lorenz63 0.5, bursting 0.02, others only the whole spectrum.")
@plrnn_training_options(hidden=50, steps=3000, batch=16, lr=5e-3)
@sweep_options()
def plrnn_reconstruct(systems, models, seeds, length, test_length, dt, noise, window, tau_tf, band_edge, hidden, steps,
                      batch, lr, schedule, p, tau, out, device, jobs, scheduler):
    """Train generative models of a dynamical system's time series, run them freely, and measure how
    faithful they are: state-space divergence, spectrum errors, maximal Lyapunov exponent, prediction
    horizon. Each training run is a cell cached in OUT/cells and checkpoints in OUT/checkpoints, so an
    interrupted run resumes with identical numbers. Writes OUT/result.json (measures and trained
    parameters), OUT/trajectories.npz (held-out and generated, subsampled to ≤ 1500 points each, the
    generated ones clipped to ±10 sd), OUT/reconstruct.png and OUT/table.txt.

    Example: rnnmemory plrnn reconstruct --system lorenz63,bursting --model rplrnn,plrnn,gru --out results/reconstruct

    Example: rnnmemory plrnn reconstruct --system data:recording.csv --dt 0.001 --model rplrnn --out results/mine
    """
    from numerics.experiments.plrnn import reconstruction
    from numerics.pipeline.experiment import Context

    config, notes = reconstruction.command_config(
        systems, models, seeds, length=length, test_length=test_length, dt=dt, noise=noise, hidden=hidden,
        window=window, tau_tf=tau_tf, steps=steps, batch=batch, lr=lr, schedule=schedule, p=p, tau=tau,
        band_edge=band_edge)
    for note in notes:
        click.echo(f"rnnmemory: {note}", err=True)
    context = Context(checkpoints=str(Path(out, "checkpoints").resolve()), progress=True)
    _run_sweep("R1", config, out, "reconstruct", device=device, jobs=jobs, scheduler=scheduler, context=context)


@plrnn.command("emit", hidden=True)
@click.option("--target", type=click.Choice(["numpy", "latex"]), default="numpy", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write into.")
def plrnn_emit(target, out):
    """The same as rnnmemory emit --content plrnn (kept for scripts that call it).

    Example: rnnmemory plrnn emit --target latex --out build/
    """
    from derivations.emit import render
    from numerics.io import write_files

    for path in write_files(out, render("plrnn", target)):
        click.echo(str(path))


@plrnn.command("long-range")
@click.option("--task", "tasks", callback=_parse_list(str, "tasks"), default="addition", show_default=True,
              help="addition, multiplication (length --T), digits (64 steps), mnist (784 steps, needs --data-dir); "
                   "comma-separated.")
@click.option("--T", "lengths", callback=_parse_list(int, "lengths"), default="50,100", show_default=True,
              help="Sequence lengths of the addition and multiplication problems (≥ 20), comma-separated.")
@click.option("--model", "models", callback=_parse_list(str, "models"), default="rplrnn,plrnn,rnn,irnn,lstm",
              show_default=True, help="rplrnn, plrnn, iplrnn, rnn, irnn, nprnn, ornn, lstm.")
@click.option("--seeds", type=int, default=2, show_default=True, callback=_positive)
@plrnn_training_options(hidden=40, steps=None, batch=64, lr=2e-3,
                        steps_help="Training steps at every T (default: 100·T; digits and mnist 100 × their length).")
@click.option("--sizes", callback=_parse_list(int, "sizes"), default="10000,1000,1000", show_default=True,
              help="Training, validation and test sequences of the addition and multiplication problems (the "
                   "public code: 100000,10000,10000).")
@click.option("--reduction", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
              help="The rPLRNN penalty over its entries: mean (the public code) or sum (the paper's formula, "
                   "about 20× stronger per A and h entry at M = 40).")
@click.option("--stop", type=click.FloatRange(0, 1), default=None, metavar="FRACTION",
              help="Stop a run once its validation fraction correct reaches this at 3 checks in a row (the run "
                   "records when and why); default: never.")
@data_dir_option("mnist")
@sweep_options()
def plrnn_long_range(tasks, lengths, models, seeds, p, tau, hidden, steps, batch, lr, schedule, sizes, reduction, stop,
                     data_dir, out, device, jobs, scheduler):
    """Figure P1's benchmark (alias: plrnn bench): train each model on each task and length over
    seeds: the test fraction correct (or accuracy) at the best validation checkpoint, mean ± sd, beside
    the best test checkpoint the public code reported. Each run is a cell cached in OUT/cells, so a
    rerun resumes; writes OUT/result.json, OUT/bench.png and OUT/table.txt.

    Example: rnnmemory plrnn long-range --task addition --T 100,200 --model rplrnn,plrnn,rnn,lstm --seeds 3 --out results/addition
    """
    from numerics.experiments.plrnn import long_range

    config = long_range.command_config(tasks, lengths, models, seeds, p=p, tau=tau, hidden=hidden, steps=steps,
                                       batch=batch, lr=lr, schedule=schedule, sizes=sizes, reduction=reduction,
                                       stop=stop, data_dir=data_dir)
    _run_sweep("P1", config, out, "bench", device=device, jobs=jobs, scheduler=scheduler)


@main.command()
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory for bench.json.")
@device_option
@click.option("--quick", is_flag=True, help="Tiny sizes, one repeat: a smoke run, not a measurement.")
@click.option("--force", is_flag=True, help="Overwrite an existing bench.json in --out.")
def bench(out, device, quick, force):
    """Time each fast path against its plain baseline, in one run on one device (speed, not figures).

    Writes DIR/bench.json (records with name, baseline_s, fast_s, ratio, device) and
    DIR/environment.json, and prints the table.

    Example: rnnmemory bench --out results/bench --device auto
    """
    from numerics import bench as benchmarks

    click.echo(benchmarks.bench_command(out, device, quick=quick, force=force))


if __name__ == "__main__":
    main()
