"""The CLI for scripts and for every console: --json, --version, examples in --help, and no
escape codes where the classic Windows console would print them raw."""

import contextlib
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest

from operator_cli.cli import main
from tests.cli.harness import operating, pointed_at, vss_restore
from tests.cli.test_start import simulated, verdict_tags
from vss_restore import tags

REPO = Path(__file__).resolve().parents[2]


class Terminal(io.StringIO):
    """What a console window is to the CLI: a terminal, which rewrites the current line."""

    def isatty(self) -> bool:
        return True


def test_version_is_the_package_s() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        code = main(["--version"])

    assert code == 0
    assert said.getvalue() == f"vss-restore {version['version']}\n"


@pytest.mark.parametrize("command", ["", "start", "status", "report", "simulate"])
def test_every_help_shows_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([command, "--help"] if command else ["--help"])

    shown = capsys.readouterr().out
    assert code == 0
    assert "examples:\n  vss-restore " + (command or "") in shown


def test_start_and_status_speak_json_for_scripts() -> None:
    with simulated() as simulation:
        snapshot = simulation.aliases.snapshots["last-night.D"]
        helper = simulation.aliases.instances["helper"]
        where = pointed_at(simulation)

        with operating(simulation):
            started = vss_restore("start", snapshot, "--helper", helper, "--json", *where)
            arn = json.loads(started.out)["execution_arn"]
            followed = vss_restore("status", arn, "--json", *where)
            simulation.clock.sleep(3600)

        ended = vss_restore("status", arn, "--json", *where)
        by_snapshot = vss_restore("status", snapshot, "--json", *where)
        latest = vss_restore("status", "--json", *where)
        consistent = verdict_tags(simulation, "last-night.D")[tags.RESULT_SNAPSHOT]
        # 90 days on, Step Functions no longer keeps the execution the verdict names.
        gone = arn.rsplit(":", 1)[0] + ":long-gone"
        ec2: Any = boto3.client("ec2", region_name=simulation.world.region)
        ec2.create_tags(Resources=[snapshot], Tags=[{"Key": tags.EXECUTION, "Value": gone}])
        months_later = vss_restore("status", snapshot, *where)

    assert started.code == 0
    assert json.loads(started.out) == {
        "snapshot_id": snapshot,
        "execution_arn": arn,
        "status": "RUNNING",
    }
    assert followed.code == 1  # not verified yet
    assert json.loads(followed.out)["status"] == "RUNNING"
    assert ended.code == 0
    execution = json.loads(ended.out)
    assert execution["status"] == "SUCCEEDED"
    assert execution["request"] == {"snapshot_id": snapshot, "helper_instance_id": helper}
    assert [v["status"] for v in execution["verdicts"]] == ["verified"]
    assert by_snapshot.code == 0
    verdict = json.loads(by_snapshot.out)
    assert verdict["verdict"] == "verified"
    assert verdict["consistent_snapshot"] == consistent
    assert [v["drive"] for v in verdict["volumes"]] == ["D"]
    assert verdict["execution"]["arn"] == arn
    assert arn.rsplit(":", 1)[1] in [e["name"] for e in json.loads(latest.out)["executions"]]
    assert months_later.code == 0, months_later.err
    assert f"execution: {gone} (no longer kept by Step Functions)" in months_later.out
    assert "volumes:   D:" in months_later.out  # the tags' summary


def test_start_follow_json_prints_one_document_at_the_end() -> None:
    with simulated() as simulation:
        snapshot = simulation.aliases.snapshots["last-night.D"]
        helper = simulation.aliases.instances["helper"]

        with operating(simulation):
            said = vss_restore(
                "start", snapshot, "--helper", helper, "--follow", "--json", *pointed_at(simulation)
            )
        consistent = verdict_tags(simulation, "last-night.D")[tags.RESULT_SNAPSHOT]

    assert said.code == 0, said.err
    result = json.loads(said.out)  # the whole output: no live lines around it
    assert result["status"] == "SUCCEEDED"
    assert result["verdict"]["status"] == "verified"
    assert result["verdict"]["consistent_snapshot"] == consistent
    assert "Revert the shadow copies" in [row["step"] for row in result["time_per_step"]]


def test_following_on_a_console_rewrites_lines_without_escape_codes() -> None:
    with simulated() as simulation:
        snapshot = simulation.aliases.snapshots["last-night.D"]
        helper = simulation.aliases.instances["helper"]
        console, err = Terminal(), io.StringIO()

        with operating(simulation):
            code = main(
                ["start", snapshot, "--helper", helper, "--follow", *pointed_at(simulation)],
                out=console,
                err=err,
            )

    shown = console.getvalue()
    assert code == 0, err.getvalue()
    assert "\x1b" not in shown
    # The running step's line ("…") is written over by its final line, padded to its width.
    assert "\r" in shown
    running, _, final = shown.partition("Revert the shadow copies")[2].partition("\r")
    assert running.rstrip().endswith("…")
    assert "Revert the shadow copies" in final.splitlines()[0]
    assert final.splitlines()[0].rstrip().endswith(" s")
