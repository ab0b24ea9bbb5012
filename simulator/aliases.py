"""Scenario aliases and the IDs moto gave them; `${kind:alias}` placeholders resolve here."""

import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from simulator.disks import braced_guid

_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)(?::([A-Za-z0-9_.-]+))?\}")


class AliasError(Exception):
    """A scenario names an alias that does not exist (yet)."""


@dataclass
class Aliases:
    region: str
    account_id: str
    seed: int
    instances: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)  # "web1.D" -> vol-...
    snapshots: dict[str, str] = field(default_factory=dict)  # alias -> snap-...
    shadows: dict[str, dict[str, str]] = field(default_factory=dict)  # alias -> letter -> id
    shadow_sets: dict[str, str] = field(default_factory=dict)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def new_guid(self) -> str:
        """A shadow copy or shadow set ID, reproducible for a given scenario."""
        return braced_guid(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def snapshot_alias(self, snapshot_id: str) -> str | None:
        return next((a for a, s in self.snapshots.items() if s == snapshot_id), None)

    def volume_alias(self, volume_id: str) -> str | None:
        return next((a for a, v in self.volumes.items() if v == volume_id), None)

    def lookup(self, kind: str, alias: str | None) -> str:
        if kind == "region":
            return self.region
        if kind == "account":
            return self.account_id
        if alias is None:
            raise AliasError(f"${{{kind}}} needs an alias: ${{{kind}:ALIAS}}")
        tables: dict[str, dict[str, str]] = {
            "instance": self.instances,
            "volume": self.volumes,
            "snapshot": self.snapshots,
            "shadow_set": self.shadow_sets,
        }
        if kind in tables:
            if alias not in tables[kind]:
                raise AliasError(f"${{{kind}:{alias}}}: no such {kind} (yet)")
            return tables[kind][alias]
        if kind == "snapshot_arn":
            return f"arn:aws:ec2:{self.region}::snapshot/{self.lookup('snapshot', alias)}"
        if kind == "volume_arn":
            volume_id = self.lookup("volume", alias)
            return f"arn:aws:ec2:{self.region}:{self.account_id}:volume/{volume_id}"
        if kind == "shadow":
            return self._shadow(alias)
        raise AliasError(f"${{{kind}:{alias}}}: unknown placeholder kind {kind!r}")

    def _shadow(self, alias: str) -> str:
        """`SNAPSHOT` (its one data partition's backup shadow copy) or `SNAPSHOT.LETTER`."""
        snapshot, letter = alias, ""
        if snapshot not in self.shadows:
            snapshot, _, letter = alias.rpartition(".")
        by_letter = self.shadows.get(snapshot)
        if by_letter is None:
            raise AliasError(f"${{shadow:{alias}}}: snapshot has no recorded shadow copy")
        if not letter:
            if len(by_letter) != 1:
                raise AliasError(f"${{shadow:{alias}}}: say which drive, e.g. {alias}.D")
            return next(iter(by_letter.values()))
        if letter.upper() not in by_letter:
            raise AliasError(f"${{shadow:{alias}}}: no shadow copy of drive {letter}")
        return by_letter[letter.upper()]

    def substitute(self, value: Any) -> Any:
        """Replace every placeholder in strings, lists and objects."""
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: self.lookup(m.group(1), m.group(2)), value)
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, dict):
            return {self.substitute(k): self.substitute(v) for k, v in value.items()}
        return value
