"""moto with the simulator's EC2, SSM and fault patches, for tests of those parts alone."""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3
from botocore.config import Config
from moto import mock_aws
from moto.ec2.models import ec2_backends

from simulator import ec2 as simulator_ec2
from simulator import faults as simulator_faults
from simulator import speedups
from simulator import ssm as simulator_ssm
from simulator.aliases import Aliases
from simulator.clock import VirtualClock
from simulator.estate import Estate, VssMarker
from simulator.faults import Faults, parse_fault
from simulator.patching import Patches
from simulator.scenario import DEFAULT_TEMPLATE, load
from simulator.ssm import Agents, CommandDocument
from simulator.template import load_template
from simulator.world import Timing, World


@dataclass
class Aws:
    """moto with the simulator's EC2, SSM and fault patches, and one Windows helper."""

    clock: VirtualClock
    world: World
    faults: Faults
    agents: Agents
    ec2: Any
    ssm: Any
    helper_id: str
    zone: str

    def volume(self, volume_id: str) -> dict[str, Any]:
        return dict(self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])

    def snapshot_state(self, snapshot_id: str) -> str:
        return str(self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["State"])


@contextmanager
def simulated_aws(fault_specs: list[dict[str, Any]]) -> Iterator[Aws]:
    with (
        mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}),
        mock_aws(),
    ):
        ec2_backends[ACCOUNT]["us-east-1"]  # built before the latency model is on
        clock = VirtualClock()
        faults = Faults([parse_fault(spec) for spec in fault_specs])
        world = World(clock, Timing(), faults)
        agents = Agents(world)
        agents.documents[DISK_TOOL] = CommandDocument.from_content(
            DISK_TOOL, DISK_TOOL_CONTENT, is_disk_tool=True
        )
        patches = Patches()
        try:
            speedups.install(patches)
            simulator_faults.install(patches, faults)
            simulator_ec2.install(patches, world)
            simulator_ssm.install(patches, world, agents)
            ssm = boto3.client("ssm", region_name="us-east-1")
            ssm.create_document(
                Content=json.dumps(DISK_TOOL_CONTENT),
                Name=DISK_TOOL,
                DocumentType="Command",
                DocumentFormat="JSON",
            )
            scenario = load({"name": "aws", "instances": {"helper": {"helper": True}}, "steps": []})
            with faults.suspended(), world.instantly():
                estate = Estate(
                    world,
                    Aliases("us-east-1", ACCOUNT, 1),
                    VssMarker("ConsistentSnapshot", "WindowsVSS"),
                )
                helper_id = estate.create_instance(scenario.instances["helper"])
            # Most tests want every API call to count; retries would hide faults.
            ec2 = boto3.client(
                "ec2", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1})
            )
            yield Aws(clock, world, faults, agents, ec2, ssm, helper_id, "us-east-1a")
        finally:
            patches.close()


ACCOUNT = "123456789012"
DISK_TOOL = "vss-restore-DiskToolDocument"
# The document as template.yaml defines it: its parameters and allowedPatterns are what the
# simulated agent checks.
DISK_TOOL_CONTENT: dict[str, Any] = (
    load_template(DEFAULT_TEMPLATE).documents["DiskToolDocument"].content
)
