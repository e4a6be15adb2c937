"""The root of the CLI: global options, command registration, and the one place errors are
rendered (``GoliveGroup.invoke``), so the console script and ``CliRunner`` behave the same."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from golive import __version__
from golive.cli import history_cmd, init_cmd, report_cmd, rollback_cmd, status_cmd
from golive.cli.application import App
from golive.cli.groups import GROUPS, help_of

__all__ = ["app", "main"]

# typer's own click (vendored since 0.29; click itself before): its usage error is BadParameter's parent
ClickUsageError: type[Exception] = typer.BadParameter.__mro__[1]
NoArgsIsHelpError: Any = getattr(importlib.import_module(ClickUsageError.__module__), "NoArgsIsHelpError", ())


def _one_line_usage(exc: Any, argv: tuple[str, ...]) -> NoReturn:
    """A usage error as every golive error is: one line naming what is wrong and where help is (click draws
    the usage and a box around the message), and with ``--json`` the error document on stdout. A command
    run without arguments still shows its help."""
    from golive.cli.render import render_error
    from golive.errors import UsageError

    if isinstance(exc, NoArgsIsHelpError):
        raise exc
    names: list[str] = []
    ctx = exc.ctx
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    where = " ".join(["golive", *reversed(names)])
    app = App(Path("golive.toml"))
    app.json = "--json" in argv  # (the options were not parsed: that is what failed)
    raise typer.Exit(render_error(app, UsageError(exc.format_message(), hint=f"`{where} --help` lists what it takes")))


# Where a flag goes is not the user's to remember: the commands' own flags ("golive --json status") are moved
# after the command, and the root's -v ("golive status -v") before it, so either order means the same.
COMMAND_FLAGS = ("--json", "--yes", "-y", "--dry-run")
ROOT_FLAGS = ("-v", "--verbose")


def _in_place(args: list[str]) -> list[str]:
    """``args`` with COMMAND_FLAGS given before the command moved to its end (before any ``--``), and
    ROOT_FLAGS given after the command moved before it. Without a command, nothing moves."""
    head: list[str] = []
    moved: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        (moved if args[i] in COMMAND_FLAGS else head).append(args[i])
        if args[i] in ("-c", "--config") and i + 1 < len(args):  # (its value may start with "-" too)
            head.append(args[i + 1])
            i += 1
        i += 1
    if i == len(args):
        return list(args)
    rest = args[i:]
    end = rest.index("--") if "--" in rest else len(rest)
    root = [t for t in rest[:end] if t in ROOT_FLAGS]
    return [*head, *root, *(t for t in rest[:end] if t not in ROOT_FLAGS), *moved, *rest[end:]]


class GoliveGroup(TyperGroup):
    """The root group: lazy subgroups (cli/groups.py), and the one place errors are rendered."""

    _listing = False
    _argv: tuple[str, ...] = ()  # the command line, for the usage errors parsing it raises

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(g for g in GROUPS if g not in self.commands)]

    def get_command(self, ctx: Any, name: str) -> Any:
        command = super().get_command(ctx, name)
        if command is not None or name not in GROUPS:
            return command
        if self._listing:  # help only needs the name and one line: do not import the group
            return TyperGroup(name=name, help=help_of(name))
        module = importlib.import_module(GROUPS[name][0])
        command = typer.main.get_command(module.app)
        command.name = name
        self.commands[name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
        args = _in_place(list(args))
        self._argv = tuple(args)
        try:
            return super().make_context(info_name, args, parent, **extra)
        except ClickUsageError as exc:  # the root's own options
            _one_line_usage(exc, self._argv)

    def invoke(self, ctx: Any) -> Any:
        from golive.core.interrupts import interrupts
        from golive.errors import GoliveError, Interrupted

        try:
            # SIGTERM and SIGHUP stop a command as Ctrl-C does from its first line (a plan waiting on an API, a
            # prompt), not only inside a run: one line, exit 130, the lock released (they killed it silently,
            # exit 143/129, the lock left behind)
            with interrupts():
                return super().invoke(ctx)
        except ClickUsageError as exc:  # a subcommand's: an unknown option, --max-rejects -1
            _one_line_usage(exc, self._argv)
        except KeyboardInterrupt:
            return self._fail(ctx, Interrupted("interrupted", hint="`golive status` shows where things stand"))
        except BrokenPipeError:  # the reader went away (`golive history | head`): click ends quietly (exit 1)
            raise
        except GoliveError as exc:
            return self._fail(ctx, exc)
        except Exception as exc:
            if type(exc).__module__.startswith(("typer", "click")):
                raise
            return self._fail(ctx, exc)
        finally:
            if isinstance(ctx.obj, App):
                ctx.obj.release_locks()

    @staticmethod
    def _fail(ctx: Any, exc: BaseException) -> Any:
        from golive.cli.render import render_error

        app = ctx.obj if isinstance(ctx.obj, App) else App(Path("golive.toml"))
        raise typer.Exit(render_error(app, exc))


def _flags_take_no_value() -> None:
    """Typer 0.29 shows a flag's type in help (`--yes <bool>`), which reads as if it took a value
    (`--yes true` is an error). A flag's type column stays empty; every other option keeps its type."""
    option = typer.core.TyperOption
    shown = getattr(option, "display_type_rich", None)
    if shown is None:  # (a typer that shows no type column)
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) and self.metavar is None else shown(self, ctx)

    option.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()

app = typer.Typer(
    cls=GoliveGroup,
    name="golive",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"golive {__version__}")
        raise typer.Exit()


ROOT_HELP = (
    "Take a web application live on a new stack — and take it back with one command.\n\n"
    "Every change is a journaled step that can be undone: `golive rollback` puts back what the last run changed.\n\n"
    "Exit codes: 0 ok, 1 a check or step failed (the system was left stopped or rolled back), 2 usage or config error,"
    " 3 another run holds the lock, 4 an undo failed (the manual action is listed), 130 interrupted.\n\n"
    "--json, --yes and --dry-run may be given before the command or after it, as may -v."
)


@app.callback(help=ROOT_HELP)
def root(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", "-c", envvar="GOLIVE_CONFIG",
                                         help="The golive.toml to use.")] = Path("golive.toml"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show step logs and tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    from golive.core.interrupts import forget

    forget()  # (a command run in-process after one whose output went away starts afresh)
    source = ctx.get_parameter_source("config")
    ctx.obj = App(config, verbose, named=getattr(source, "name", None) == "COMMANDLINE")


app.command("init")(init_cmd.init)
app.command("status")(status_cmd.status)
app.command("history")(history_cmd.history)
app.command("report")(report_cmd.report)
app.command("rollback")(rollback_cmd.rollback)



def main() -> None:
    app()
