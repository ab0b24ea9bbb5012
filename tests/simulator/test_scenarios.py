"""Scenario files follow a documented schema, and a broken one is refused with its path."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from simulator import faults, instance_loss
from simulator.__main__ import main
from simulator.scenario import DEFAULT_TEMPLATE, SCHEMA_PATH, ScenarioError, load
from simulator.template import TemplateError, load_template
from simulator.world import Timing

SCENARIOS = sorted((Path(__file__).parents[2] / "simulator" / "scenarios").glob("*.json"))
SHIPPED = [p for p in SCENARIOS if p.name != "schema.json"]
README = (SCHEMA_PATH.parent / "README.md").read_text()


def _minimal(**extra: Any) -> dict[str, Any]:
    return {"name": "x", "instances": {"web1": {}}, "steps": [], **extra}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_follows_the_schema(path: Path) -> None:
    scenario = load(path)
    assert scenario.name == path.stem
    assert scenario.expect, "a shipped scenario says what it proves"


def test_the_three_promised_scenarios_are_shipped() -> None:
    assert {p.stem for p in SHIPPED} >= {"nightly-backup", "on-demand", "multi-volume"}


def test_defaults_give_a_windows_instance_with_a_system_disk() -> None:
    scenario = load(_minimal())
    (web1,) = scenario.instances.values()
    (system,) = web1.volumes
    assert (web1.platform, web1.ping_status, web1.helper) == ("windows", "Online", False)
    assert (system.alias, system.device, system.drive_letters, system.partition_style) == (
        "C",
        "/dev/sda1",
        ("C",),
        "GPT",
    )


@pytest.mark.parametrize(
    ("document", "where", "what"),
    [
        (_minimal(stpes=[]), "(top level)", "stpes"),
        (_minimal(steps=[{"backup": "web1", "events": "sometimes"}]), "steps[0]", "sometimes"),
        (
            _minimal(instances={"web1": {"volumes": [{"alias": "C", "size": "big"}]}}),
            "instances.web1.volumes[0].size",
            "'big'",
        ),
        (
            _minimal(faults=[{"timing": "coffee_seconds", "seconds": 1}]),
            "faults[0]",
            "coffee_seconds",
        ),
    ],
)
def test_a_broken_scenario_is_refused_naming_the_place(
    document: dict[str, Any], where: str, what: str
) -> None:
    with pytest.raises(ScenarioError) as refused:
        load(document)
    assert f"at {where}" in str(refused.value)
    assert what in str(refused.value)


def test_steps_must_name_instances_that_exist() -> None:
    with pytest.raises(ScenarioError, match="step 1: no instance 'db9'"):
        load(_minimal(steps=[{"backup": "db9"}]))
    with pytest.raises(ScenarioError, match="exactly one system volume"):
        load(_minimal(instances={"web1": {"volumes": [{"alias": "D"}]}}))


def test_the_readme_documents_every_key_of_the_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    keys = set(schema["properties"]) - {"$schema"}
    keys |= set(schema["$defs"]["timing"]["properties"])
    keys |= set(schema["$defs"]["instance"]["properties"])
    keys |= set(schema["$defs"]["volume"]["properties"])
    keys |= set(schema["$defs"]["snapshot"]["properties"])
    documented = set(re.findall(r"`([a-z_]+)`", README))
    assert sorted(keys - documented) == []


def test_the_schema_offers_the_faults_and_timings_the_simulator_knows() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    (
        _,
        timing_fault,
        _,
        windows_fault,
        scan_fault,
        event_fault,
        linger_fault,
        trailer_fault,
        lost_fault,
    ) = schema["$defs"]["fault"]["oneOf"]
    assert linger_fault["properties"]["windows"]["const"] in faults.WINDOWS_ACTIONS
    assert tuple(timing_fault["properties"]["timing"]["enum"]) == faults.TIMING_KEYS
    assert tuple(windows_fault["properties"]["windows"]["enum"]) == faults.WINDOWS_ACTIONS
    assert scan_fault["properties"]["windows"]["const"] in faults.WINDOWS_ACTIONS
    assert tuple(event_fault["properties"]["event"]["enum"]) == faults.EVENTS
    assert tuple(trailer_fault["properties"]["windows"]["enum"]) == faults.WINDOWS_ACTIONS
    assert tuple(lost_fault["properties"]["windows"]["enum"]) == faults.WINDOWS_ACTIONS
    assert tuple(lost_fault["properties"]["helper_lost"]["enum"]) == faults.HELPER_LOSSES
    assert tuple(instance_loss.HOW) == faults.HELPER_LOSSES
    assert set(schema["$defs"]["timing"]["properties"]) == set(Timing.__dataclass_fields__)


def test_template_parameters_are_refused_as_cloudformation_would() -> None:
    template = load_template(DEFAULT_TEMPLATE)
    with pytest.raises(TemplateError, match="'CheckAfterRevert' must be one of AllowedValues"):
        template.parameter_values({"CheckAfterRevert": "yes"})
    with pytest.raises(TemplateError, match="'ValidationScript' failed to satisfy constraint"):
        template.parameter_values({"ValidationScript": "validate.ps1; Format-Volume"})
    accepted = template.parameter_values(
        {"CheckAfterRevert": "false", "ValidationScript": "C:\\vss-restore\\validate.ps1"}
    )
    assert accepted["CheckAfterRevert"] == "false"


def test_the_command_line_validates_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(_minimal(steps=[{"advance": -1}])))
    assert main(["validate", str(SHIPPED[0])]) == 0
    assert main(["validate", str(broken)]) == 2
    assert "steps[0]" in capsys.readouterr().err
