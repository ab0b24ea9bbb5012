"""The nightly backup's CreateSnapshot retries, as documents/backup.ps1 sets and makes them.

The settings are read from the script's own top-level assignments (`$RetryCodes`,
`$RetryBaseSeconds`, `$RetryCapSeconds`, `$RetrySeconds`, and its paced start's
`$SnapshotGapSeconds`), so the simulator and the bench
(bench/des.py) retry exactly as the script does and cannot drift from it. The script's
`New-SnapshotWithRetry`: once the AWS SDK's own retries are spent, a refusal whose error code
is one of `$RetryCodes` is tried again after a wait drawn uniformly from
[0, min(cap, base * 2^n)) ("full jitter", AWS Architecture Blog, "Exponential Backoff And
Jitter"), n counting the volume's retries from 0, unless the wait would end past the budget
(`$RetrySeconds` after the snapshot script began).
"""

import random
import re
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "documents" / "backup.ps1"
# AWS.Tools.EC2's own attempts before the script's retry: the AWS SDK for .NET's legacy retry
# mode (MaxErrorRetry 4: 5 attempts), taken to back off as botocore's legacy mode does.
# ASSUMED: the SDK's mode and count are to be checked on a real account (docs/real-account.md).
SDK_ATTEMPTS = 5


class RetrySettingsMissing(Exception):
    """The script no longer assigns a retry setting the way this reader expects."""


@dataclass(frozen=True)
class RetrySettings:
    codes: tuple[str, ...]
    base_seconds: float
    cap_seconds: float
    budget_seconds: float
    # The paced start: the k-th CreateSnapshot (from 0) of one script no sooner than
    # (k + 1) * gap_seconds after the script began (`$SnapshotGapSeconds`).
    gap_seconds: float = 0.0

    def paced_at(self, began: float, k: int) -> float:
        """The earliest moment of the script's k-th CreateSnapshot."""
        return began + (k + 1) * self.gap_seconds

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry number `attempt` + 1 (attempt counts from 0)."""
        return min(self.cap_seconds, self.base_seconds * 2.0**attempt)

    def wait(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, ceiling), as `Get-Random -Minimum 0.0 -Maximum` draws."""
        return rng.uniform(0.0, self.ceiling(attempt))

    def retries(self, code: str, wait: float, budget_left: float) -> bool:
        """Whether the script retries a refusal with this code after that wait, with that
        many seconds of its budget left."""
        return code in self.codes and wait <= budget_left


def _assigned(script: str, name: str) -> str:
    match = re.search(rf"^\${name} = (?P<value>.+)$", script, re.MULTILINE)
    if match is None:
        raise RetrySettingsMissing(f"documents/backup.ps1 has no top-level ${name} = ... line")
    return match["value"].strip()


def _number(script: str, name: str) -> float:
    value = _assigned(script, name)
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        raise RetrySettingsMissing(f"${name} = {value}: not a plain number")
    return float(value)


def read(script: str) -> RetrySettings:
    codes = _assigned(script, "RetryCodes")
    listed = re.fullmatch(r"@\((?P<items>('[A-Za-z]+'(, )?)+)\)", codes)
    if listed is None:
        raise RetrySettingsMissing(f"$RetryCodes = {codes}: not a list of quoted error codes")
    return RetrySettings(
        codes=tuple(re.findall(r"'([A-Za-z]+)'", listed["items"])),
        base_seconds=_number(script, "RetryBaseSeconds"),
        cap_seconds=_number(script, "RetryCapSeconds"),
        budget_seconds=_number(script, "RetrySeconds"),
        gap_seconds=_number(script, "SnapshotGapSeconds"),
    )


def settings() -> RetrySettings:
    """documents/backup.ps1's settings."""
    return read(SCRIPT.read_text(encoding="utf-8"))
