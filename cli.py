"""The `rnnmemory` command: a thin Click layer over derivations/ and numerics/.

It parses options, calls library functions and prints; no mathematics lives here. Bad input
ends in one line on stderr and exit code 2.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from derivations.spec import BLOCKS, CONVENTIONS, PARAMETERIZATIONS, Spec, SpecError

SIGMA_NAMES = ("sigma_W", "sigma_F", "sigma_C", "sigma_D")
EVAL_DEFAULTS = {"sigma_F": 1.0, "sigma_C": 1.0, "sigma_D": 0.0}


class InputError(Exception):
    """Bad input found after option parsing; reported as one line with exit code 2."""


def _input_errors():
    # numerics (and torch) load only for the commands that need them.
    errors = [SpecError, InputError, OSError, ArithmeticError]
    numerics = sys.modules.get("numerics.errors")
    if numerics is not None:
        errors.append(numerics.NumericsError)
    return tuple(errors)


class Command(click.Group):
    def main(self, args=None, prog_name=None, **kwargs):
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
        except _input_errors() as e:
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            if isinstance(e, OSError) and e.filename and str(e.filename) not in message:
                message = f"{message}: {e.filename}"
            click.echo(f"rnnmemory: error: {message}", err=True)
            sys.exit(2)


def _parse_blocks(ctx, param, value):
    if value is None:
        return None
    blocks = [b.strip() for b in value.split(",") if b.strip()]
    for b in blocks:
        if b not in BLOCKS:
            raise click.BadParameter(f"unknown block {b!r} (blocks are {', '.join(BLOCKS)})")
    return tuple(blocks)


def _parse_rates(ctx, param, values):
    rates = []
    for item in values:
        block, sep, value = item.partition("=")
        block = block.strip()
        if not sep or block not in BLOCKS:
            raise click.BadParameter(f"{item!r} is not BLOCK=RATE with a block among {', '.join(BLOCKS)}")
        rates.append((block, value.strip()))
    return tuple(rates)


def spec_options(f):
    """The parameterization options shared by every command that builds a `Spec`."""
    options = [
        click.option("--param", type=click.Choice(PARAMETERIZATIONS), default="ntk", show_default=True,
                     help="ntk: tilde parameters with 1/√fan-in; standard: raw parameters at rate η/n."),
        click.option("--convention", type=click.Choice(CONVENTIONS), default="A", show_default=True,
                     help="A: input enters h_k at step k; B: at step k+1 (lag 0 is D alone)."),
        click.option("--feedthrough/--no-feedthrough", default=True, show_default=True, help="Include ŷ_k += D x_k."),
        click.option("--train", "trained", callback=_parse_blocks, default=None, metavar="W,F,C[,D]",
                     help="Blocks trained; the rest are frozen. Default: all."),
        click.option("--rate", "rates", multiple=True, callback=_parse_rates, metavar="BLOCK=RATE",
                     help="Relative learning rate λ of a block (repeatable; default 1)."),
        click.option("--symbolic-rates", is_flag=True, help="Keep λ_W, λ_F, λ_C, λ_D as symbols."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_spec(param, convention, feedthrough, trained, rates, symbolic_rates) -> Spec:
    if symbolic_rates and rates:
        raise InputError("--rate and --symbolic-rates exclude each other")
    return Spec(param=param, convention=convention, feedthrough=feedthrough,
                trained=trained if trained is not None else BLOCKS, rates=rates, symbolic_rates=symbolic_rates)


def _parse_eval(ctx, param, value):
    if value is None:
        return None
    values = dict(EVAL_DEFAULTS)
    for item in value.split(","):
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or not (name in SIGMA_NAMES or name.startswith("lambda_") and name[7:] in BLOCKS):
            raise click.BadParameter(f"{item!r} is not NAME=VALUE with NAME among {', '.join(SIGMA_NAMES)} or lambda_X")
        try:
            values[name] = float(number)
        except ValueError:
            raise click.BadParameter(f"{name} is not a number: {number!r}") from None
        if not values[name] >= 0 or values[name] == float("inf"):
            raise click.BadParameter(f"{name} must be a finite number ≥ 0, got {number.strip()}")
    if "sigma_W" not in values:
        raise click.BadParameter("sigma_W is required")
    return values


def _parse_lags(ctx, param, value):
    start, sep, stop = value.partition(":")
    try:
        lo, hi = (int(start), int(stop)) if sep else (0, int(start))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not START:STOP (integers)") from None
    if lo < 0 or hi <= lo:
        raise click.BadParameter(f"{value!r} is empty or negative; need 0 ≤ START < STOP")
    return range(lo, hi)


@click.group(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnmemory", message="%(prog)s %(version)s")
def main():
    """Closed-form memory bias of linear RNNs, checked against trained networks."""


@main.command()
@spec_options
@click.option("--format", "fmt", type=click.Choice(["text", "latex", "json"]), default="text", show_default=True)
@click.option("--eval", "point", callback=_parse_eval, default=None, metavar="sigma_W=0.8,sigma_F=1,...",
              help="Evaluate at these σ (and λ with --symbolic-rates); σ_F, σ_C default 1, σ_D 0.")
@click.option("--lags", callback=_parse_lags, default="0:12", show_default=True, metavar="START:STOP",
              help="Lags to evaluate with --eval (STOP excluded).")
def derive(param, convention, feedthrough, trained, rates, symbolic_rates, fmt, point, lags):
    """Derive the lag weights α_j of the wide-limit NTK for a parameterization.

    Example: rnnmemory derive --convention B --train W,C --eval sigma_W=0.8 --lags 0:6
    """
    from derivations import derive as run_derivation
    from derivations import report

    spec = make_spec(param, convention, feedthrough, trained, rates, symbolic_rates)
    d = run_derivation(spec)
    data = report.summary(d)
    rows = numbers = None
    if point is not None:
        missing = [f"lambda_{b}" for b in spec.trained if spec.symbolic_rates and f"lambda_{b}" not in point]
        if missing:
            raise InputError(f"--eval needs {', '.join(missing)} with --symbolic-rates")
        rows = report.evaluate(d, point, lags)
        numbers = report.property_values(data["_props"], point)
    if fmt == "json":
        data.pop("_props")
        if rows is not None:
            data.update(eval=point, values=rows, property_values=numbers)
        click.echo(json.dumps(data, indent=2))
    elif fmt == "latex":
        click.echo(report.latex(d, data))
    else:
        click.echo(report.text(d, data, rows, numbers))


@main.command()
@spec_options
@click.option("--target", type=click.Choice(["numpy", "torch", "latex", "c"]), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Directory to write into.")
def emit(param, convention, feedthrough, trained, rates, symbolic_rates, target, out):
    """Write code generated from the derived expressions (numpy, torch, LaTeX or C).

    Example: rnnmemory emit --target c --out build/
    """
    from derivations.emit import emit as write

    spec = make_spec(param, convention, feedthrough, trained, rates, symbolic_rates)
    for path in write(spec, target, out):
        click.echo(str(path))


if __name__ == "__main__":
    main()
