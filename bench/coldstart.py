"""Measurement 3: each handler module's import time against `import boto3` alone.

The Lambda Python runtime has boto3 preinstalled, so boto3's import is the floor of any
handler's cold start; what a handler imports beyond it is ours to keep small. Each import
runs in a fresh interpreter (`python -X importtime -c "import M"`), boto3 alone right
before each handler, and the median of the pairs' ratios counts: the machine is shared.

Where the template's runtime (python3.12) is on this machine, the imports run there, as
Lambda runs them: the handler from the deployment package that `sam build` lays out (the
pinned requirements with their dependencies and `functions/`, no `.pyc`, so compiled at
each import as on Lambda's read-only /var/task), boto3 from a runtime directory after it
on the path (/var/runtime's place). Otherwise, and for comparison, in the dev venv.
"""

import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from local.invoke import Failed, find_runtime_python, template_runtime_and_architecture
from simulator.template import load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
BASELINE = "boto3"
WORK = ROOT / "out" / "coldstart"

Importer = Callable[[str], str]


@dataclass(frozen=True)
class Interpreter:
    """Where modules are imported: a Python, the directories on its path, first first."""

    python: str
    path: tuple[Path, ...]
    what: str

    def version(self) -> str:
        done = subprocess.run(
            [self.python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()


DEV_VENV = Interpreter(
    sys.executable,
    (ROOT / "functions",),
    "the dev venv: functions/ and the venv's packages (boto3 with awscrt), .pyc cached",
)


def package_compile() -> list[str]:
    """How `make build` compiles the package after sam build (the Makefile's one definition)."""
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("PACKAGE_COMPILE :="):
            return line.split(":=", 1)[1].split()
    raise RuntimeError("the Makefile defines no PACKAGE_COMPILE")


def lambda_like(python: str, work: Path = WORK) -> Interpreter:
    """`python` (the runtime's) with the deployment package, rebuilt in `work` and compiled
    as `make build` compiles it, then a runtime directory holding the dev venv's boto3 and
    botocore versions (no awscrt, as Lambda's). Lambda's own boto3 version differs and may
    ship .pyc (assumed here: pip's default)."""
    task, runtime = work / "task", work / "runtime"
    shutil.rmtree(work, ignore_errors=True)
    requirements = ROOT / "functions" / "requirements.txt"
    _pip(python, "--no-compile", "-r", str(requirements), "--target", str(task))
    shutil.copytree(
        ROOT / "functions",
        task,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    subprocess.run([python, *package_compile(), str(task)], check=True)
    pins = [f"{name}=={metadata.version(name)}" for name in ("boto3", "botocore")]
    _pip(python, *pins, "--target", str(runtime))
    what = "the deployment package as make build leaves it (compiled), boto3 {} after it".format(
        metadata.version("boto3")
    )
    return Interpreter(python, (task, runtime), what)


def _pip(python: str, *arguments: str) -> None:
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(arguments)} failed: {done.stderr[-500:]}")


def runtime_python() -> str | None:
    """The template's runtime Python, found as the Makefile finds it for sam build."""
    try:
        return find_runtime_python()
    except Failed:
        return None


def handler_modules(template: Path = TEMPLATE) -> list[str]:
    """Every function's handler module, from the template (one source of truth)."""
    specs = load_template(template).functions.values()
    return sorted({spec.handler.rsplit(".", 1)[0] for spec in specs})


def importtime_report(module: str, where: Interpreter = DEV_VENV) -> str:
    """`-X importtime`'s stderr for importing `module` in a fresh interpreter."""
    path = os.pathsep.join(str(p) for p in where.path)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [where.python, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=where.path[0],
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
    importer: Importer | None = None,
    where: Interpreter = DEV_VENV,
) -> dict[str, Any]:
    """Each handler's import against boto3's imported just before it (a pair per round, so
    that both see the same load), after one round to warm the disk cache; the median of
    each handler's ratios counts."""
    if importer is None:

        def importer(module: str) -> str:
            return importtime_report(module, where)

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
        "python": where.version(),
        "where": where.what,
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


def measure_cold_start(repetitions: int = 5) -> dict[str, Any]:
    """In the runtime's Python with the deployment package, and in the dev venv for
    comparison; in the dev venv alone, saying so, when the runtime's Python is missing."""
    python = runtime_python()
    if python is None:
        result = measure(repetitions)
        runtime = template_runtime_and_architecture()[0]
        result["fallback"] = f"no {runtime} on this machine: measured in the dev venv instead"
        return result
    result = measure(repetitions, where=lambda_like(python))
    result["dev_venv"] = measure(repetitions)
    return result
