"""``orderflow stock`` and ``orderflow erp`` against a SQLite file, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from consumers.erp.snapshot import Line, OrderSnapshot
from consumers.erp.stock_file import StockFileError, parse_stock_csv
from consumers.erp.store import ErpStore, StockCount
from orderflow.cli import cli
from orderflow.db import create_engine, migrate


@pytest.fixture
def database(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/erp.db"
    clean_env.setenv("ORDERFLOW_DATABASE_URL", url)
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_stock_set_then_show_json(database: str) -> None:
    assert run("stock", "set", "--item-id", "5", "--model-id", "0", "--on-hand", "7").exit_code == 0
    assert run("stock", "set", "--item-id", "3", "--model-id", "9", "--on-hand", "2").exit_code == 0
    engine = create_engine(database)
    ErpStore(engine).apply_ledger(
        OrderSnapshot(1, "A", "READY_TO_SHIP", 100, (Line(5, 0, 3),)), now=1
    )
    engine.dispose()
    result = run("stock", "show", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"item_id": 3, "model_id": 9, "on_hand": 2, "reserved": 0, "available": 2},
        {"item_id": 5, "model_id": 0, "on_hand": 7, "reserved": 3, "available": 4},
    ]
    table = run("stock", "show")
    assert table.exit_code == 0 and "available" in table.output.splitlines()[0]


def test_stock_set_refuses_a_negative_count(database: str) -> None:
    result = run("stock", "set", "--item-id", "5", "--model-id", "0", "--on-hand", "-1")
    assert result.exit_code == 2


def test_stock_import_sets_absolute_counts(database: str, tmp_path: Path) -> None:
    run("stock", "set", "--item-id", "1", "--model-id", "1", "--on-hand", "50")
    csv_file = tmp_path / "stock.csv"
    csv_file.write_text("item_id,model_id,on_hand\n1,1,4\n1,2,0\n\n2,1,9\n")
    result = run("stock", "import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "imported 3" in result.output
    shown = json.loads(run("stock", "show", "--json").output)
    assert [(s["item_id"], s["model_id"], s["on_hand"]) for s in shown] == [
        (1, 1, 4),
        (1, 2, 0),
        (2, 1, 9),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item,model,qty\n1,1,1\n", "line 1: the header must be exactly item_id,model_id,on_hand"),
        ("", "line 1: the header must be exactly"),
        ("item_id,model_id,on_hand\n1,1,1\n2,1,-3\n", "line 3: on_hand must be a whole number"),
        ("item_id,model_id,on_hand\n1,1,1\n1,x,3\n", "line 3: model_id must be a whole number"),
        ("item_id,model_id,on_hand\n1,1\n", "line 2: expected 3 values"),
        (
            "item_id,model_id,on_hand\n1,1,1\n\n1,1,2\n",
            "line 4: item 1 model 1 is already on line 2",
        ),
        ("item_id,model_id,on_hand\n1,1,2.5\n", "line 2: on_hand must be a whole number"),
    ],
)
def test_a_bad_stock_file_imports_nothing(
    database: str, tmp_path: Path, text: str, message: str
) -> None:
    csv_file = tmp_path / "stock.csv"
    csv_file.write_text(text)
    result = run("stock", "import", str(csv_file))
    assert result.exit_code == 1
    assert message in result.output and "nothing was imported" in result.output
    assert "Traceback" not in result.output
    assert json.loads(run("stock", "show", "--json").output) == []


def test_the_stock_file_parser_keeps_file_order_and_accepts_a_bom() -> None:
    assert parse_stock_csv("\ufeffitem_id,model_id,on_hand\r\n2,0,1\r\n1,0,5\r\n") == [
        StockCount(2, 0, 1),
        StockCount(1, 0, 5),
    ]
    with pytest.raises(StockFileError):
        parse_stock_csv("item_id,model_id,on_hand,extra\n")


def test_erp_show_json(database: str) -> None:
    engine = create_engine(database)
    migrate(engine)
    store = ErpStore(engine)
    store.apply_order(
        OrderSnapshot(7, "B2", "SHIPPED", 1_700_000_100, (Line(1, 2, 3), Line(4, 0, 1))), now=1
    )
    store.apply_order(OrderSnapshot(7, "A1", "UNPAID", 1_700_000_000, ()), now=1)
    engine.dispose()
    result = run("erp", "show", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {
            "shop_id": 7,
            "order_sn": "A1",
            "status": "UNPAID",
            "update_time": 1_700_000_000,
            "lines": [],
        },
        {
            "shop_id": 7,
            "order_sn": "B2",
            "status": "SHIPPED",
            "update_time": 1_700_000_100,
            "lines": [
                {"item_id": 1, "model_id": 2, "quantity": 3},
                {"item_id": 4, "model_id": 0, "quantity": 1},
            ],
        },
    ]
    text = run("erp", "show")
    assert text.exit_code == 0 and "B2 SHIPPED" in text.output


def test_empty_store_shows_empty_lists(database: str) -> None:
    assert json.loads(run("erp", "show", "--json").output) == []
    assert json.loads(run("stock", "show", "--json").output) == []
