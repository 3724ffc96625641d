"""A dependency-free DataFrame -> Markdown table (pandas' to_markdown needs tabulate)."""

from __future__ import annotations

import pandas as pd


def to_markdown(table: pd.DataFrame, floatfmt: str = ",.3g") -> str:
    def cell(v) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
