"""`vss-restore doctor --on-instances`: the one check that runs something on the backed-up
instances (a read-only PowerShell script through Run Command), and only when asked."""

import json
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import boto3

from operator_cli import doctor_instances
from operator_cli.doctor_instances import DOCUMENT, MODULE, SCRIPT
from simulator import Simulation, load
from tests.cli.harness import vss_restore
from tests.powershell_checks import CHANGING, command_names, encoding_problems, syntax_problems

VSS = {"ConsistentSnapshot": "WindowsVSS"}


def estate() -> dict[str, Any]:
    """Two backed-up Windows servers, one without AWS.Tools.EC2, one whose agent is offline,
    and a helper (named mode)."""
    return {
        "name": "cli-doctor-on-instances",
        "start": "2026-11-25T00:00:00Z",
        "parameters": {"HelperInstanceIds": "${instance:helper}"},
        "instances": {
            "web1": {"tags": VSS},
            "sql1": {"tags": VSS, "powershell_modules": {}},
            "file1": {"tags": VSS, "ssm": {"ping_status": "ConnectionLost"}},
            "helper": {"helper": True},
        },
        "steps": [],
    }


@contextmanager
def account() -> Iterator[Simulation]:
    with Simulation(load(estate())) as simulation:
        clock = simulation.clock
        virtual_time = types.SimpleNamespace(sleep=clock.sleep, monotonic=clock.elapsed)
        with mock.patch.object(doctor_instances, "time", virtual_time):
            yield simulation


def sent_scripts(simulation: Simulation) -> list[tuple[str, str]]:
    """(instance, document) of every Run Command invocation sent in the account."""
    return [(i.instance_id, i.document.name) for i in simulation.agents.log]


def test_on_instances_asks_each_online_instance_and_names_the_one_without_the_module() -> None:
    with account() as simulation:
        ids = simulation.aliases.instances
        said = vss_restore("doctor", "--region", simulation.world.region, "--on-instances")
        as_json = vss_restore(
            "doctor", "--region", simulation.world.region, "--on-instances", "--json"
        )
        sent = sent_scripts(simulation)
        parameters = [i.parameters for i in simulation.agents.log]

    checks = {c["name"]: c for c in json.loads(as_json.out)["checks"]}
    assert checks[f"{MODULE} on {ids['web1']}"] == {
        "name": f"{MODULE} on {ids['web1']}",
        "ok": True,
        "found": "version 4.1.700",
        "fix": "",
        "warn": False,
    }
    missing = checks[f"{MODULE} on {ids['sql1']}"]
    assert not missing["ok"]
    assert missing["found"] == "not installed: the nightly backup fails"
    assert missing["fix"] == "on the instance: Install-Module AWS.Tools.EC2 -Scope AllUsers"
    # The instance whose agent is offline is not asked: its own check says why.
    assert f"{MODULE} on {ids['file1']}" not in checks
    assert "SSM ConnectionLost" in checks[f"instance {ids['file1']}"]["found"]
    # Two runs of doctor, each asking the two Online instances once, the script as written.
    assert sorted(sent) == sorted([(ids["web1"], DOCUMENT), (ids["sql1"], DOCUMENT)] * 2)
    assert {p["commands"] for p in parameters} == {SCRIPT}
    assert said.code == as_json.code == 1
    assert f"FAIL  {MODULE} on {ids['sql1']}" in said.out


def test_without_on_instances_nothing_is_run_on_any_instance() -> None:
    with account() as simulation:
        said = vss_restore("doctor", "--region", simulation.world.region, "--json")
        sent = sent_scripts(simulation)

    names = [c["name"] for c in json.loads(said.out)["checks"]]
    assert sent == []
    assert not [n for n in names if n.startswith(MODULE)]


def test_the_script_parses_and_only_reads() -> None:
    assert syntax_problems(SCRIPT) == []
    assert encoding_problems(SCRIPT) == []
    called = command_names(SCRIPT)
    assert called == ["Get-Module", "Sort-Object", "Select-Object", "Write-Output", "Write-Output"]
    assert not [c for c in called if CHANGING.match(c)]


def test_an_instance_that_never_answers_fails_its_check() -> None:
    check = doctor_instances.module_check("i-0123456789abcdef0", None)

    assert not check.ok
    assert check.found == "no answer to Run Command in 150 s"


def test_the_simulated_windows_runs_no_script_it_does_not_model() -> None:
    with account() as simulation:
        ssm: Any = boto3.client("ssm", region_name=simulation.world.region)
        web1 = simulation.aliases.instances["web1"]
        command = ssm.send_command(
            InstanceIds=[web1], DocumentName=DOCUMENT, Parameters={"commands": ["Get-Process"]}
        )["Command"]["CommandId"]
        simulation.clock.sleep(30)
        answer = ssm.get_command_invocation(CommandId=command, InstanceId=web1)

    assert answer["Status"] == "Failed"
    assert "runs no such PowerShell script" in answer["StandardErrorContent"]


def test_an_instance_without_the_module_gets_no_backup() -> None:
    # documents/backup.ps1 stops before its first shadow copy when the module is missing.
    with account() as simulation:
        made = simulation.estate.backup("sql1", None, None, "single", True)  # type: ignore[union-attr]
        summary = simulation.estate.backup_summaries[-1]  # type: ignore[union-attr]

    assert made == {}
    assert summary["problems"] == [f"the PowerShell module {MODULE} is not installed"]


def test_the_script_runs_under_the_execution_timeout_doctor_gives() -> None:
    with account() as simulation:
        vss_restore("doctor", "--region", simulation.world.region, "--on-instances")
        timeouts = {i.document.step_timeout for i in simulation.agents.log}

    assert timeouts == {float(doctor_instances.EXECUTION_SECONDS)}
