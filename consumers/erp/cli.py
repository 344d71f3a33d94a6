"""``orderflow stock set|import|show`` and ``orderflow erp show``: the ERP store by hand."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from consumers.erp.stock_file import StockFileError, parse_stock_csv
from consumers.erp.store import ErpStore
from orderflow.db import create_engine, migrate
from orderflow.settings import load_settings

_COUNT = click.IntRange(0, 2**63 - 1)


def _open_store() -> ErpStore:
    engine = create_engine(load_settings().database_url)
    migrate(engine)
    return ErpStore(engine)


@click.group(name="stock")
def stock() -> None:
    """ERP stock per (item_id, model_id): on hand, reserved by open orders, available."""


@stock.command(name="set")
@click.option("--item-id", required=True, type=_COUNT)
@click.option("--model-id", required=True, type=_COUNT, help="0 for an item without models.")
@click.option("--on-hand", required=True, type=_COUNT, help="Absolute count on hand.")
def stock_set(item_id: int, model_id: int, on_hand: int) -> None:
    """Set one model's absolute count on hand (reservations are kept)."""
    store = _open_store()
    store.set_stock(item_id, model_id, on_hand, now=int(time.time()))
    click.echo(f"item {item_id} model {model_id}: on hand {on_hand}")


@stock.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def stock_import(file: Path) -> None:
    """Set absolute counts from a CSV file with the header item_id,model_id,on_hand. A bad
    row stops the import before anything is written."""
    try:
        counts = parse_stock_csv(file.read_text(encoding="utf-8"))
    except StockFileError as exc:
        raise click.ClickException(f"{file}: {exc}; nothing was imported") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 text; nothing was imported") from exc
    _open_store().import_stock(counts, now=int(time.time()))
    click.echo(f"imported {len(counts)} stock counts from {file}")


@stock.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of models.")
def stock_show(as_json: bool) -> None:
    """Show every model's on hand, reserved and available stock."""
    levels = _open_store().stock()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "item_id": level.item_id,
                        "model_id": level.model_id,
                        "on_hand": level.on_hand,
                        "reserved": level.reserved,
                        "available": level.available,
                    }
                    for level in levels
                ]
            )
        )
        return
    click.echo(f"{'item_id':>14} {'model_id':>14} {'on_hand':>9} {'reserved':>9} {'available':>9}")
    for level in levels:
        click.echo(
            f"{level.item_id:>14} {level.model_id:>14} {level.on_hand:>9} "
            f"{level.reserved:>9} {level.available:>9}"
        )


@click.group(name="erp")
def erp() -> None:
    """The orders and lines erp-sync has written to the ERP store."""


@erp.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of orders.")
def erp_show(as_json: bool) -> None:
    """Show every order in the ERP store with its lines."""
    orders = _open_store().orders()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "shop_id": o.shop_id,
                        "order_sn": o.order_sn,
                        "status": o.status,
                        "update_time": o.update_time,
                        "lines": [
                            {
                                "item_id": li.item_id,
                                "model_id": li.model_id,
                                "quantity": li.quantity,
                            }
                            for li in o.lines
                        ],
                    }
                    for o in orders
                ]
            )
        )
        return
    for o in orders:
        lines = ", ".join(f"{li.item_id}/{li.model_id} x{li.quantity}" for li in o.lines)
        click.echo(f"{o.shop_id} {o.order_sn} {o.status} {o.update_time}  {lines or '(no lines)'}")
