"""`make local-invoke`'s plan and seeding, checked without Docker: every function has a
sample, every sample runs, and every ID a sample carries is seeded, learned or kept on
purpose (the docker run itself is `make local-invoke`, not pytest)."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.image import REQUIREMENTS
from local.invoke import local_template, template_functions
from local.plan import PLAN, Contains, Like, mismatches
from local.seeding import KEPT, SEEDED

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
SAMPLES = sorted(EVENTS.glob("*.json"))

# What counts as an ID in a sample: EC2 IDs, a disk serial, braced GUIDs (shadow copies,
# sets, disk identities, volume paths), Step Functions ARNs, and SSM command IDs.
EC2_ID = re.compile(r"\b(?:snap|vol|i)-[0-9a-f]{8,17}\b")
SERIAL = re.compile(r"\bvol[0-9a-f]{17}(?=_)")
GUID = re.compile(
    r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
)
STATES_ARN = re.compile(r"arn:aws:states:[^\"\s]+")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _ids(value: Any, key: str = "") -> set[str]:
    if isinstance(value, dict):
        return {found for k, v in value.items() for found in _ids(v, k)}
    if isinstance(value, list):
        return {found for v in value for found in _ids(v, key)}
    if not isinstance(value, str):
        return set()
    found = set(EC2_ID.findall(value)) | set(SERIAL.findall(value)) | set(GUID.findall(value))
    found |= set(STATES_ARN.findall(value))
    if key == "command_id" and UUID.match(value):
        found.add(value)
    return found


def _sample_ids(name: str) -> set[str]:
    return _ids(json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8")))


def _learned_by(step_index: int) -> set[str]:
    """The fake IDs steps before this one learn (a volume's serial comes with the volume)."""
    learned = set()
    for step in PLAN[:step_index]:
        for fake in step.learn:
            learned.add(fake)
            if fake.startswith("vol-"):
                learned.add(fake.replace("-", "", 1))
    return learned


def test_every_function_has_a_sample_in_the_plan() -> None:
    functions = set(template_functions())
    planned = {step.function for step in PLAN}
    assert functions - planned == set(), "functions local-invoke would not invoke"
    assert planned - functions == set(), "the plan names functions template.yaml lacks"


def test_every_sample_runs_once() -> None:
    planned = [step.sample for step in PLAN]
    assert sorted(planned) == sorted(path.stem for path in SAMPLES)


@pytest.mark.parametrize("index", range(len(PLAN)), ids=lambda i: f"{i + 1:02d}-{PLAN[i].sample}")
def test_every_id_of_the_sample_is_seeded_or_learned_before_or_kept(index: int) -> None:
    step = PLAN[index]
    uncovered = _sample_ids(step.sample) - set(SEEDED) - set(KEPT) - _learned_by(index)
    assert not uncovered, (
        f"events/{step.sample}.json names {sorted(uncovered)}: seed them (local/seeding.py "
        "SEEDED), learn them from an earlier step (local/plan.py), or keep them (KEPT) saying why"
    )


def test_every_learned_id_is_used_by_a_later_sample() -> None:
    for index, step in enumerate(PLAN):
        for fake in step.learn:
            assert any(fake in _sample_ids(later.sample) for later in PLAN[index + 1 :]), fake


def test_each_step_either_expects_a_result_or_names_an_error() -> None:
    for step in PLAN:
        assert (step.expect is None) != (not step.error), step


def test_the_local_template_is_for_this_machine_and_declares_the_endpoint(
    tmp_path: Path,
) -> None:
    text = local_template("x86_64", tmp_path).read_text(encoding="utf-8")
    assert "    Architectures: [x86_64]\n" in text
    assert f"CodeUri: {REPO / 'functions'}/\n" in text
    assert f"DefinitionUri: {REPO / 'statemachine'}/" in text
    assert '        AWS_ENDPOINT_URL: ""\n' in text
    assert text.count("AWS_ENDPOINT_URL") == 1


def test_the_stand_in_image_has_the_boto3_the_unit_tests_use() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = path.read_text(encoding="utf-8").splitlines()
        found = (re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line) for line in lines)
        return {m.group(1).lower(): m.group(2) for m in found if m}

    image, dev = pins(REQUIREMENTS), pins(REPO / "requirements-dev.txt")
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3"):
        assert image[name] == dev[name], name


def test_a_result_that_differs_is_reported() -> None:
    expected = {"volume_id": Like(r"^vol-"), "reason": Contains("Revert"), "items": [{"a": 1}]}
    assert (
        mismatches({"volume_id": "vol-1", "reason": "RevertFailed", "items": [{"a": 1}]}, expected)
        == []
    )
    problems = mismatches({"volume_id": "snap-1", "reason": "", "items": []}, expected)
    assert len(problems) == 3
