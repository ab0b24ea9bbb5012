"""The one table `make bench` prints: measurement, value, goal, met?"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    measurement: str
    value: str
    goal: str
    met: bool | None  # None: a figure with no goal of its own


def render(rows: list[Row]) -> str:
    cells = [("measurement", "value", "goal", "met?")]
    cells += [
        (r.measurement, r.value, r.goal, "-" if r.met is None else ("yes" if r.met else "NO"))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
