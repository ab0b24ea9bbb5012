"""Measurement 3: each handler module's import time against `import boto3` alone.

The Lambda Python runtime has boto3 preinstalled, so boto3's import is the floor of any
handler's cold start; what a handler imports beyond it is ours to keep small. Each import
runs in a fresh interpreter (`python -X importtime -c "import M"`), boto3 alone right
before each handler, and the median of the pairs' ratios counts: the machine is shared.
"""

import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from simulator.template import load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
BASELINE = "boto3"

Importer = Callable[[str], str]


def handler_modules(template: Path = TEMPLATE) -> list[str]:
    """Every function's handler module, from the template (one source of truth)."""
    specs = load_template(template).functions.values()
    return sorted({spec.handler.rsplit(".", 1)[0] for spec in specs})


def importtime_report(module: str) -> str:
    """`-X importtime`'s stderr for importing `module` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions"), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import {module} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stderr


def parse(report: str) -> dict[str, tuple[int, int, int]]:
    """module -> (self µs, cumulative µs, depth) from `-X importtime` lines."""
    found: dict[str, tuple[int, int, int]] = {}
    for line in report.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        if not own.strip().isdigit():
            continue  # the header line
        depth = (len(name) - len(name.lstrip(" "))) // 2
        found.setdefault(name.strip(), (int(own), int(cumulative), depth))
    return found


def cumulative_us(report: str, module: str) -> int:
    """The whole import of `module` (its top-level line)."""
    parsed = parse(report)
    if module not in parsed:
        raise RuntimeError(f"no import time line for {module}")
    return parsed[module][1]


def by_package(report: str) -> dict[str, int]:
    """Self time (µs) summed by top-level package: where an import's time goes."""
    totals: dict[str, int] = {}
    for name, (own, _, _) in parse(report).items():
        top = name.split(".", 1)[0]
        totals[top] = totals.get(top, 0) + own
    return totals


def beyond_baseline(report: str, baseline_report: str, count: int = 5) -> list[dict[str, Any]]:
    """The packages that make a handler's import longer than boto3's alone, heaviest first
    (the difference of their self time between the two imports)."""
    mine, floor = by_package(report), by_package(baseline_report)
    extra = {p: mine[p] - floor.get(p, 0) for p in mine}
    ranked = sorted(extra.items(), key=lambda item: item[1], reverse=True)[:count]
    return [{"package": p, "ms": round(us / 1000, 1)} for p, us in ranked]


def measure(
    repetitions: int = 5,
    modules: Sequence[str] | None = None,
    importer: Importer = importtime_report,
) -> dict[str, Any]:
    """Each handler's import against boto3's imported just before it (a pair per round, so
    that both see the same load), after one round to warm the disk cache; the median of
    each handler's ratios counts."""
    handlers = list(modules) if modules is not None else handler_modules()
    ratios: dict[str, list[float]] = {m: [] for m in handlers}
    times: dict[str, list[int]] = {m: [] for m in [BASELINE, *handlers]}
    last: dict[str, str] = {}
    for round_number in range(repetitions + 1):
        for module in handlers:
            floor, report = importer(BASELINE), importer(module)
            if round_number == 0:
                continue
            pair = cumulative_us(floor, BASELINE), cumulative_us(report, module)
            times[BASELINE].append(pair[0])
            times[module].append(pair[1])
            ratios[module].append(pair[1] / pair[0])
            last[BASELINE], last[module] = floor, report
    medians = {m: statistics.median(v) for m, v in ratios.items()}
    worst = max(medians, key=lambda m: medians[m])
    return {
        "repetitions": repetitions,
        "python": sys.version.split()[0],
        "boto3_ms": round(statistics.median(times[BASELINE]) / 1000, 1),
        "handlers": {
            m: {
                "ms": round(statistics.median(times[m]) / 1000, 1),
                "ratio": round(medians[m], 2),
            }
            for m in handlers
        },
        "worst": worst,
        "worst_ratio": round(medians[worst], 2),
        "median_ratio": round(statistics.median(medians.values()), 2),
        "worst_beyond_boto3": beyond_baseline(last[worst], last[BASELINE]),
    }
