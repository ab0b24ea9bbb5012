"""The account `sam local invoke` talks to: the simulator's moto world, served over HTTP.

`simulator.Simulation` deploys template.yaml into moto (ledger table, alert topic, disk tool
document, state machine) and builds the estate below, with everything moto lacks: Windows
instances that EC2 and SSM describe as such (`describe_instance_information` is not in moto),
an SSM agent that runs the disk tool on a simulated Windows disk and answers with its
report, and volumes, attachments and snapshots that take (virtual) time. Those behaviours
are patches of moto's classes in this process, so the server runs here too: moto's
`ThreadedMotoServer`, in a thread, on the docker bridge address the Lambda containers reach.

The samples in events/ carry fixed fake IDs; moto makes its own. Each invocation gets a
copy of its sample with the fake IDs replaced: by what the seeding created (SEEDED), or
by what an earlier invocation returned (the plan's `learn`). Some values stay as they are
(KEPT), with the reason.
"""

import json
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto.ec2.models import ec2_backends
from moto.server import ThreadedMotoServer

from simulator import Simulation, load
from simulator.verdicts import read_alerts

REGION = "us-east-1"

# The fake IDs of the samples, and what stands for each in the seeded account.
SNAPSHOT = "snap-0a1b2c3d4e5f60718"
SOURCE_VOLUME = "vol-0aa11bb22cc33dd44"
HELPER = "i-0abc1234def567890"
SOURCE_INSTANCE = "i-0aaa1111bbb222333"
SHADOW_COPY = "{6f1e0e7a-1111-4c5d-9e8f-000000000001}"
SHADOW_SET = "{0c9b8a7d-2222-4c5d-9e8f-000000000001}"
DISK_IDENTITY = "{5B0C6A1E-3D2F-4E8A-9B7C-1A2B3C4D5E6F}"

SEEDED = {
    SNAPSHOT: "snapshot night1.D: the nightly VSS backup of web1's D: volume, tagged as "
    "BackupDocument tags it (VSS marker, instance, device, shadow copy and set IDs)",
    SOURCE_VOLUME: "volume web1.D, the volume that was backed up",
    SOURCE_INSTANCE: "instance web1, the backed-up instance (never the helper)",
    HELPER: "instance helper: running, Windows, SSM online, tagged vss-restore:helper=true, "
    "with C: and E: (so the restored disk comes up as disk 2, the number the samples carry)",
    SHADOW_COPY: "the backup's shadow copy of D: inside night1.D",
    SHADOW_SET: "that shadow copy's set",
    DISK_IDENTITY: "kept: web1.D's GPT disk GUID is created equal to it, so the restored "
    "disk really has it",
}
KEPT = {
    "snap-0b2c3d4e5f6071829": "the multi-volume event's second snapshot: ReadRequest only "
    "parses the event, nothing looks it up",
    "vol-0bb22cc33dd44ee55": "its volume, likewise",
    "{a1b2c3d4-0000-0000-0000-100000000000}": "a volume path in plan_revert's inspection "
    "report: PlanRevert reads only the report, which agrees with itself",
    "arn:aws:states:us-east-1:123456789012:execution:RestoreStateMachine:demo": "the "
    "execution: every sample names the same one, so the ledger's claim and turn and the "
    "volume's tags agree from one invocation to the next",
    "arn:aws:states:us-east-1:123456789012:stateMachine:RestoreStateMachine": "read from "
    "the status-change event only",
}

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


def scenario(start: datetime) -> dict[str, Any]:
    """The estate: a backed-up Windows instance, a separate helper, last night's backup."""
    return {
        "name": "local-invoke",
        "description": "The account behind `make local-invoke` (local/seeding.py).",
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "template": str(TEMPLATE),
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        "instances": {
            "web1": {
                # Tagged as the backup's maintenance window targets it, for the hourly look.
                "tags": {"ConsistentSnapshot": "WindowsVSS"},
                "launched_before": 48 * 3600,
                "volumes": [
                    {"alias": "C", "size": 30, "drive_letters": ["C"], "system": True},
                    {
                        "alias": "D",
                        "device": "xvdb",
                        "size": 30,
                        "drive_letters": ["D"],
                        "identity": DISK_IDENTITY,
                    },
                ],
            },
            "helper": {
                "helper": True,
                "volumes": [
                    {"alias": "C", "size": 30, "drive_letters": ["C"], "system": True},
                    {"alias": "E", "device": "xvdb", "size": 20, "drive_letters": ["E"]},
                ],
            },
        },
        "snapshots": {"night1.D": {"volume": "web1.D", "kind": "vss-backup"}},
        "steps": [],
    }


class LocalAccount:
    """Enter: the seeded account, served at `endpoint`; leave: the server stops."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.endpoint = ""
        self.rewrites: dict[str, str] = {}
        self.orphan_volume = ""
        self._exit = ExitStack()
        self.simulation: Simulation | None = None

    def __enter__(self) -> "LocalAccount":
        try:
            self._enter()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()

    def _enter(self) -> None:
        # Virtual time starts at real time: the handlers' own clocks are real.
        start = datetime.now(UTC).replace(microsecond=0)
        self.simulation = self._exit.enter_context(Simulation(load(scenario(start))))
        aliases = self.simulation.aliases
        self.rewrites = {
            SNAPSHOT: aliases.lookup("snapshot", "night1.D"),
            SOURCE_VOLUME: aliases.lookup("volume", "web1.D"),
            SOURCE_INSTANCE: aliases.lookup("instance", "web1"),
            HELPER: aliases.lookup("instance", "helper"),
            SHADOW_COPY: aliases.lookup("shadow", "night1.D"),
            SHADOW_SET: aliases.lookup("shadow_set", "night1.D"),
            DISK_IDENTITY: DISK_IDENTITY,
        }
        self.orphan_volume = self._seed_orphan()
        server = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        server.start()
        self._exit.callback(server.stop)
        host, port = server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def _seed_orphan(self) -> str:
        """A temporary volume two days old whose execution Step Functions does not know: what
        the daily reconciliation exists to report."""
        assert self.simulation is not None
        machine = self.simulation.stack.state_machines["RestoreStateMachine"]
        prefix, _, name = machine.rpartition(":stateMachine:")
        tags = {
            "vss-restore:resource": "temporary-volume",
            "vss-restore:source-snapshot": self.rewrites[SNAPSHOT],
            "vss-restore:execution": f"{prefix}:execution:{name}:lost-two-nights-ago",
        }
        with self.simulation.world.instantly():
            volume_id = str(
                self.ec2.create_volume(
                    AvailabilityZone=f"{REGION}a",
                    Size=30,
                    SnapshotId=self.rewrites[SNAPSHOT],
                    TagSpecifications=[
                        {
                            "ResourceType": "volume",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                        }
                    ],
                )["VolumeId"]
            )
        backend = ec2_backends[self.simulation.world.account_id][REGION]
        backend.volumes[volume_id].create_time = self.now() - timedelta(hours=48)
        return volume_id

    def credentials_for(self, function: str) -> str:
        """The access key the function's container signs with: its own role's."""
        assert self.simulation is not None
        assert self.simulation.authorizer is not None
        return self.simulation.authorizer.credentials_for(function)

    def judged_calls(self, functions: set[str]) -> list[Any]:
        """The functions' calls IAM judged (simulator/iam), each against its own role: the
        containers sign as their role (`credentials_for`), the server judges."""
        assert self.simulation is not None
        authorizer = self.simulation.authorizer
        assert authorizer is not None
        roles = {authorizer.function_roles[f] for f in functions}
        return [call for call in authorizer.calls if call.principal in roles]

    # -- the samples ----------------------------------------------------------------------
    def learn(self, fake: str, real: str) -> None:
        self.rewrites[fake] = real
        if fake.startswith("vol-") and real.startswith("vol-"):
            # The disk serial number Windows shows: vol<hex>_00000001.
            self.rewrites[fake.replace("-", "", 1)] = real.replace("-", "", 1)

    def rewrite(self, text: str) -> str:
        for fake in sorted(self.rewrites, key=len, reverse=True):
            text = text.replace(fake, self.rewrites[fake])
        return text

    def rewritten(self, value: Any) -> Any:
        return json.loads(self.rewrite(json.dumps(value)))

    # -- the functions' environment -------------------------------------------------------
    def environment(self, function: str) -> dict[str, str]:
        """What the simulator resolves from template.yaml for the function, plus the
        endpoint (boto3 honours AWS_ENDPOINT_URL: the handlers need no switch)."""
        assert self.simulation is not None
        deployed = self.simulation.functions.by_name[function]
        return {
            **deployed.environment,
            "AWS_ENDPOINT_URL": self.endpoint,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def env_vars_file(self, path: Path) -> Path:
        assert self.simulation is not None
        values = {name: self.environment(name) for name in self.simulation.functions.by_name}
        path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    # -- time and the world's view ----------------------------------------------------------
    def now(self) -> datetime:
        assert self.simulation is not None
        return self.simulation.clock.now()

    def advance(self, seconds: float) -> None:
        """Let virtual time pass: volumes become available, commands end, snapshots complete."""
        assert self.simulation is not None
        self.simulation.clock.advance(seconds)
        self.simulation.world.settle()

    def seeded(self, alias: str) -> str:
        """An instance, volume or snapshot of the scenario by its alias (kind: by prefix)."""
        assert self.simulation is not None
        kind, _, name = alias.partition(":")
        return self.simulation.aliases.lookup(kind, name)

    @property
    def ec2(self) -> Any:
        # In this process moto intercepts every client: these read the served backends.
        return boto3.client("ec2", region_name=REGION)

    @property
    def ssm(self) -> Any:
        return boto3.client("ssm", region_name=REGION)

    def ledger_item(self, key: str) -> dict[str, Any]:
        """The Ledger table's item with this key, as stored ({} if there is none)."""
        assert self.simulation is not None
        client: Any = boto3.client("dynamodb", region_name=REGION)
        found = client.get_item(
            TableName=self.simulation.stack.tables["Ledger"],
            Key={"pk": {"S": key}},
            ConsistentRead=True,
        )
        return dict(found.get("Item", {}))

    def alerts(self) -> list[dict[str, str]]:
        assert self.simulation is not None
        return read_alerts(self.simulation)

    def snapshot_tags(self, snapshot_id: str) -> dict[str, str]:
        found = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        return {t["Key"]: t["Value"] for t in found[0].get("Tags", [])} if found else {}

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        found = self.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])[
            "Volumes"
        ]
        return dict(found[0]) if found else None
