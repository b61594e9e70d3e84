"""The result tables of ``fnn.sweep`` and ``fnn.cross_validate``: one row per trained model."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


class Table:
    """Rows of ``{column: value}``: printable, and ``columns()`` gives ``{column: [values]}``."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]):
        self.rows = [dict(row) for row in rows]

    def columns(self) -> dict[str, list]:
        """``{column: [one value per row]}`` (e.g. for ``pandas.DataFrame``)."""
        names = list(dict.fromkeys(name for row in self.rows for name in row))
        return {name: [row.get(name) for row in self.rows] for name in names}

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        columns = self.columns()
        cells = {name: [f"{v:.4g}" if isinstance(v, float) else "" if v is None else str(v)
                        for v in values]
                 for name, values in columns.items()}
        widths = {name: max(len(name), *(len(c) for c in cells[name])) for name in cells}
        lines = ["  ".join(name.rjust(widths[name]) for name in cells)]
        for i in range(len(self.rows)):
            lines.append("  ".join(cells[name][i].rjust(widths[name]) for name in cells))
        return "\n".join(lines)

    __repr__ = __str__


def final_row(history: dict, epoch: int) -> dict:
    """A model's row: its number of epochs, then every history entry (but the learning rate
    and skipped steps) at ``epoch``, the epoch whose parameters it returns."""
    row: dict[str, Any] = {"epochs": len(history["loss"])}
    row.update({name: values[epoch] for name, values in history.items()
                if name not in ("learning_rate", "skipped")})
    return row
