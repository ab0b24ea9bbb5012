"""`python -m simulator run SCENARIO [--json OUT]`: run a scenario and judge it."""

import argparse
import json
import sys
from pathlib import Path

from simulator.clock import RunStopped
from simulator.runner import run_scenario
from simulator.scenario import SCHEMA_PATH, ScenarioError, load
from simulator.template import TemplateError

SCENARIOS = Path(__file__).parent / "scenarios"


def _scenario_path(name: str) -> Path:
    """A path, or the name of a scenario shipped in simulator/scenarios/."""
    path = Path(name)
    if path.exists() or path.suffix == ".json":
        return path
    return SCENARIOS / f"{name}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a scenario; exit 0 when every expectation holds")
    run.add_argument("scenario", help="scenario file, or a name from simulator/scenarios/")
    run.add_argument("--json", metavar="OUT", help="write the JSON report here ('-': stdout)")
    run.add_argument("--handler-log", metavar="FILE", help="write the handlers' log lines here")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the table")
    check = commands.add_parser("validate", help="check scenario files against the schema")
    check.add_argument("scenarios", nargs="+")
    args = parser.parse_args(argv)

    if args.command == "validate":
        status = 0
        for name in args.scenarios:
            if Path(name).resolve() == SCHEMA_PATH.resolve():
                print(f"{name}: the schema itself, skipped")  # what scenarios/*.json matches
                continue
            try:
                load(_scenario_path(name))
                print(f"{name}: ok")
            except ScenarioError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                status = 2
        return status

    progress = None if args.quiet else (lambda line: print(line, flush=True))
    try:
        if args.handler_log:
            with open(args.handler_log, "w") as log:
                report = run_scenario(
                    _scenario_path(args.scenario), progress=progress, handler_log=log
                )
        else:
            report = run_scenario(_scenario_path(args.scenario), progress=progress)
    except (ScenarioError, TemplateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RunStopped as exc:
        print(f"the run stopped: {exc}", file=sys.stderr)
        return 1
    print()
    print(report.table())
    if args.json:
        text = json.dumps(report.to_json(), indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
