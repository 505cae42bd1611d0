"""The command reference's generator (docs/commands.md runs it through cogapp): every visible command's
--help, at a fixed width so the page does not depend on the terminal."""
import click

import cli

WIDTH = 100


def _commands(group, path=()):
    for name in sorted(group.list_commands(None)):
        command = group.get_command(None, name)
        if command.hidden:
            continue
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def help_pages() -> str:
    out = []
    for path, command in [((), cli.main), *_commands(cli.main)]:
        name = " ".join(("rnnmemory", *path))
        parent = click.Context(cli.main, info_name="rnnmemory", terminal_width=WIDTH, max_content_width=WIDTH)
        context = click.Context(command, info_name=" ".join(path) or "rnnmemory", parent=parent if path else None,
                                terminal_width=WIDTH, max_content_width=WIDTH)
        level = "##" if len(path) < 2 else "###"
        out += [f"\n{level} `{name}`\n", "```text", command.get_help(context).replace("Usage: rnnmemory rnnmemory",
                                                                                     "Usage: rnnmemory"), "```"]
    return "\n".join(out) + "\n"
