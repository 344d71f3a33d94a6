"""Reading a stock file: CSV with the header ``item_id,model_id,on_hand`` and one absolute
count per model. A bad file is refused whole, with one sentence naming the line."""

from __future__ import annotations

import csv
import io

from consumers.erp.store import StockCount

HEADER = ["item_id", "model_id", "on_hand"]
_MAX_ID = 2**63 - 1


class StockFileError(ValueError):
    """The file cannot be imported; the message is one sentence naming the line."""


def parse_stock_csv(text: str) -> list[StockCount]:
    """The counts in ``text``, in file order. Blank lines are skipped; a model listed twice,
    a missing or extra column, or a value that is not a whole number ≥ 0 is an error."""
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(rows, None)
    if header is None or [name.strip() for name in header] != HEADER:
        raise StockFileError(
            f"line 1: the header must be exactly {','.join(HEADER)}, got {','.join(header or [])!r}"
        )
    counts: list[StockCount] = []
    seen: dict[tuple[int, int], int] = {}
    for row in rows:
        number = rows.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(HEADER):
            raise StockFileError(
                f"line {number}: expected 3 values (item_id,model_id,on_hand), got {len(row)}"
            )
        item_id, model_id, on_hand = (
            _whole(number, name, cell) for name, cell in zip(HEADER, row, strict=True)
        )
        if (item_id, model_id) in seen:
            raise StockFileError(
                f"line {number}: item {item_id} model {model_id} is already on line "
                f"{seen[(item_id, model_id)]}"
            )
        seen[(item_id, model_id)] = number
        counts.append(StockCount(item_id, model_id, on_hand))
    return counts


def _whole(line: int, name: str, cell: str) -> int:
    text = cell.strip()
    if not text.isdigit() or int(text) > _MAX_ID:
        raise StockFileError(f"line {line}: {name} must be a whole number ≥ 0, got {cell!r}")
    return int(text)
