"""One check of `vss-restore doctor`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One check: what was looked at, whether it passed, what was found, what to do."""

    name: str
    ok: bool
    found: str
    fix: str = ""
    warn: bool = False  # passed, but worth a look (printed WARN; the exit code stays 0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
