"""The ``orderflow`` command: one subcommand per process or operator task.

Subcommands are imported only when run, so ``orderflow --help`` stays fast and a process
loads only what it uses. Each entry maps a command name to ``module:attribute``.
"""

from __future__ import annotations

import importlib
import sys

import click

from orderflow.logs import configure_logging
from orderflow.settings import ConfigError, load_settings

_COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:attribute, one-line help shown by `orderflow --help`)
    "topics": ("orderflow.topics:topics_command", "Create the topics and register the schemas."),
    "auth": ("shopee.cli:auth", "Authorise Shopee shops (link, code exchange) and show tokens."),
    "sandbox": ("shopee.sandbox.cli:sandbox", "Run the Shopee Open Platform simulator."),
    "orders": ("shopee.cli:orders", "List a shop's Shopee orders over any time range."),
    "webhook": ("producers.webhook:webhook_command", "Receive Shopee pushes into Kafka."),
    "poller": (
        "producers.poller:poller_command",
        "Reconcile every shop's orders by update_time; drain lost pushes.",
    ),
    "enricher": (
        "producers.enricher:enricher_command",
        "Turn order notices into full OrderEvent snapshots.",
    ),
    "replay": (
        "consumers.replay:replay_command",
        "Re-publish a dead-letter topic's records after a fix.",
    ),
    "backfill": (
        "producers.backfill:backfill_command",
        "Re-list a shop's orders over a historic range (resumable).",
    ),
    "consume": (
        "consumers.cli:consume",
        "Run a consumer of the orders topic: erp-sync, stock-restore or auto-cancel.",
    ),
    "migrate": ("orderflow.db:migrate_command", "Apply the database migrations."),
    "stock": ("consumers.erp.cli:stock", "Set, import and show ERP stock per item model."),
    "erp": ("consumers.erp.cli:erp", "Show the orders and lines in the ERP store."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module_name, _, attribute = _COMMANDS[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help from the table keeps `orderflow --help` from importing every command.
        rows = [(name, help_text) for name, (_, help_text) in sorted(_COMMANDS.items())]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="orderflow")
def cli() -> None:
    """orderflow: Shopee order activity as Avro events on Kafka, and the consumers that act
    on them.

    Configuration comes from ORDERFLOW_* environment variables; see the README.
    """
    # Log settings apply to every command. A bad setting is reported by the command that
    # needs it, in full; here it only means the default log format.
    try:
        settings = load_settings()
    except ConfigError:
        return
    configure_logging(settings.log_level, settings.log_format)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except ConfigError as exc:
        click.echo(f"orderflow: configuration error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
