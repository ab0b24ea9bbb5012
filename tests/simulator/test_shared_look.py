"""Issue #13: restores waiting at once share one DescribeVolumes a second (looks.py), with the
real handlers on moto, the ledger's election and records, and every call judged by IAM."""

import copy
import json
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from simulator import Report, Simulation, load
from simulator.scenario import REPO_ROOT
from vss_restore import clock, steps, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.errors import NotOurs
from vss_restore.logic import looks, pacing
from vss_restore.looks import SharedLook

SEVERAL = REPO_ROOT / "simulator" / "scenarios" / "several-helpers.json"
# The steps that look at a volume: its three waits and the two "ours?" checks.
VOLUME_STEPS = {
    "CreateVolumeFunctionRole",
    "VolumeStateFunctionRole",
    "AttachVolumeFunctionRole",
    "DetachVolumeFunctionRole",
    "DeleteVolumeFunctionRole",
}


def _four_at_once() -> dict[str, Any]:
    """Four snapshots of one server at the same instant, one helper taking all four at once
    (HelperConcurrency 4): their creates, attaches, detaches and deletes overlap."""
    document: dict[str, Any] = json.loads(SEVERAL.read_text())
    document = copy.deepcopy(document)
    document["name"] = "shared-look"
    document["parameters"] = {
        "HelperMode": "named",
        "HelperInstanceIds": "${instance:helper1}",
        "HelperConcurrency": 4,
    }
    del document["instances"]["sql1"], document["instances"]["helper2"]
    for step in document["steps"]:
        if "deliver" in step:
            step["at"] = 0
    document["expect"]["max_attached_per_helper"] = 4
    return document


@pytest.fixture(scope="module")
def four_at_once() -> tuple[Report, Simulation, list[str]]:
    """The run, and the keys of the shared look's items left in the ledger at its end."""
    with Simulation(load(_four_at_once())) as simulation:
        report = simulation.run()
        client: Any = boto3.client("dynamodb", region_name=simulation.world.region)
        table = simulation.stack.tables["Ledger"]
        keys = [
            str(item["pk"]["S"])
            for page in client.get_paginator("scan").paginate(TableName=table)
            for item in page["Items"]
            if str(item["pk"]["S"]).startswith("volumes#")
        ]
    return report, simulation, keys


def test_restores_waiting_at_once_make_fewer_describe_volumes_than_looks(
    four_at_once: tuple[Report, Simulation, list[str]],
) -> None:
    report, simulation, _ = four_at_once
    assert report.ok, report.failures
    assert report.calls_refused == []
    assert simulation.authorizer is not None
    calls = Counter(
        (call.principal, call.action)
        for call in simulation.authorizer.calls
        if call.principal in VOLUME_STEPS
    )

    def total(action: str) -> int:
        return sum(n for (_, a), n in calls.items() if a == action)

    # Each look of a wait or a check reads the shared look's item and its volume's record in
    # one BatchGetItem; each shared look reads the records of its whole answer in one more.
    looks = total("dynamodb:BatchGetItem") - total("ec2:DescribeVolumes")
    assert looks >= 4 * 5  # the four restores' three waits and two checks, a look at least
    assert total("ec2:DescribeVolumes") < looks
    # The four volumes are created, and attached, within about a second: the creates and the
    # attaches are paced at 4 a second (logic/pacing.DEFAULT_RATES), so the four waits of each
    # step share shared looks: fewer DescribeVolumes than waits, each with a read of its
    # answer. (Their detaches and deletes follow the disk tool, one restore at a time on the
    # helper, a minute apart: each of those looks is its own second's looker.)
    assert all(pacing.DEFAULT_RATES[a] <= 4 for a in (pacing.CREATE_VOLUME, pacing.ATTACH_VOLUME))
    for step in ("CreateVolumeFunctionRole", "AttachVolumeFunctionRole"):
        shared = calls[(step, "ec2:DescribeVolumes")]
        assert 1 <= shared < 4, step
        # Four waits' reads at least (a wait that saw its volume not yet there reads again),
        # and one read of its answer per shared look.
        assert calls[(step, "dynamodb:BatchGetItem")] >= 4 + shared, step


def test_a_deleted_volume_leaves_no_record_behind(
    four_at_once: tuple[Report, Simulation, list[str]],
) -> None:
    report, _, keys = four_at_once
    assert report.ok, report.failures
    # The look's own item stays (one item, the election); each volume's record went with it.
    assert keys == ["volumes#look"]


# -- a volume not ours, on both paths: the code's check, and IAM at the call -----------------
NIGHTLY = REPO_ROOT / "simulator" / "scenarios" / "nightly-backup.json"
SOURCE = "snap-0123456789abcdef0"


@pytest.mark.parametrize("path", ["looker", "forged-fresh-record"])
@pytest.mark.parametrize("step", ["detach", "delete"])
def test_a_volume_not_ours_is_refused_by_the_code_and_by_iam_on_both_paths(
    path: str, step: str
) -> None:
    with Simulation(load(json.loads(NIGHTLY.read_text()))) as simulation:
        assert simulation.authorizer is not None
        ec2: Any = boto3.client("ec2", region_name=simulation.world.region)
        helper = simulation.aliases.lookup("instance", "helper")
        zone = ec2.describe_instances(InstanceIds=[helper])["Reservations"][0]["Instances"][0][
            "Placement"
        ]["AvailabilityZone"]
        with simulation.world.instantly():
            volume_id = ec2.create_volume(Size=10, AvailabilityZone=zone)["VolumeId"]
            if step == "detach":
                ec2.attach_volume(VolumeId=volume_id, InstanceId=helper, Device="xvdz")
        ledger = Ledger(simulation.stack.tables["Ledger"])
        role = f"{step.title()}VolumeFunctionRole"
        look = SharedLook(Ec2(), ledger)
        if path == "forged-fresh-record":
            # Whoever can write the ledger claims the production volume is our temporary one.
            now_ms = int(clock.now().timestamp() * 1000)
            forged = dict(ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])
            forged["SnapshotId"] = SOURCE
            forged["Tags"] = tags.as_list(
                {tags.RESOURCE: tags.TEMPORARY_VOLUME, tags.SOURCE_SNAPSHOT: SOURCE}
            )
            ledger.note_volume(volume_id, looks.encode(forged), now_ms, now_ms // 1000 + 60)
            assert ledger.elect_looker(now_ms, looks.LOOK_EVERY_MS)
            ledger.note_answered(now_ms)

        def the_step() -> None:
            if step == "detach":
                steps.detach_volume(Ec2(), volume_id, helper, SOURCE, look)
            else:
                steps.delete_volume(Ec2(), volume_id, SOURCE, look)

        def the_call_alone() -> None:
            if step == "detach":
                Ec2().detach_volume(volume_id, helper)
            else:
                Ec2().delete_volume(volume_id)

        with simulation.authorizer.acting(role), pytest.raises((NotOurs, ClientError)) as refused:
            the_step()
        if path == "looker":
            # The shared look lists our tag only: the volume is looked at on its own, and the
            # code refuses it before any call.
            assert refused.type is NotOurs
        else:
            # The forged record passes the code's check; IAM's aws:ResourceTag condition on the
            # call refuses it, as AWS would.
            assert refused.type is ClientError
            assert "UnauthorizedOperation" in str(refused.value)
        # And IAM refuses the call itself whatever the code decided.
        with simulation.authorizer.acting(role), pytest.raises(ClientError, match="Unauthorized"):
            the_call_alone()
        volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        assert [a["InstanceId"] for a in volume["Attachments"]] == (
            [helper] if step == "detach" else []
        )
