"""Unit-test fixtures: the events/ samples, a Lambda context, stubbed clients and a moto world."""

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2 import ec2_backends

from tools.cfn_template import load_template
from vss_restore import tags
from vss_restore.observability import metrics
from vss_restore.settings import Settings

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
REGION = "us-east-1"

# The fixed fake IDs the samples in events/ use; handler tests swap in the moto world's.
FAKE_SNAPSHOT = "snap-0a1b2c3d4e5f60718"
FAKE_HELPER = "i-0abc1234def567890"
FAKE_SOURCE_INSTANCE = "i-0aaa1111bbb222333"  # the backed-up instance, never the helper
FAKE_VOLUME = "vol-0123456789abcdef0"
FAKE_CONSISTENT = "snap-0fedcba9876543210"
FAKE_COMMAND = "2f9d1c4e-8b7a-4c3d-9e2f-1a2b3c4d5e6f"

# The helper lives in another zone than the backed-up volume, so a test can tell them apart.
HELPER_ZONE = "us-east-1c"
SOURCE_ZONE = "us-east-1a"
DISK_TOOL_DOCUMENT = "vss-restore-unit-DiskTool"
LEDGER_TABLE = "vss-restore-unit-Ledger"
# Windows Server 2012 R2 Base and Amazon Linux in moto's default AMI list. The list is not
# loaded (MOTO_EC2_LOAD_DEFAULT_AMIS=false: it costs 0.12 s per fresh mock), so the world
# sets the Windows platform on moto's instance itself.
WINDOWS_AMI = "ami-1ecc1e67"
LINUX_AMI = "ami-760aaa0f"

# Powertools warns when a handler emitted no metric; pyproject turns warnings into errors.
NO_METRICS_WARNING = "ignore:No application metrics to publish:UserWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "lambda_context" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.filterwarnings(NO_METRICS_WARNING))


@functools.cache
def _ledger_definition() -> dict[str, Any]:
    return dict(load_template(REPO / "template.yaml")["Resources"]["Ledger"]["Properties"])


def create_ledger(dynamodb: Any) -> None:
    """The ledger table exactly as template.yaml declares it (keys and index)."""
    table = _ledger_definition()
    dynamodb.create_table(
        TableName=LEDGER_TABLE,
        BillingMode=table["BillingMode"],
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"],
    )


def load_sample(name: str, replace: dict[str, str] | None = None) -> dict[str, Any]:
    """A fresh copy of events/<name>.json, with fake IDs replaced where asked."""
    text = (EVENTS / f"{name}.json").read_text(encoding="utf-8")
    for fake, real in (replace or {}).items():
        text = text.replace(fake, real)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@pytest.fixture
def sample() -> Callable[[str], dict[str, Any]]:
    """Load a sample by name: `sample("on-demand")`. Tests must load samples this way."""
    return load_sample


_CLIENTS: dict[tuple[Any, ...], Any] = {}
_make_client = boto3.client


def _reused_client(*args: Any, **kwargs: Any) -> Any:
    """boto3.client, but one client per service for the session.

    Building an EC2 client takes about 0.1 s (a class with hundreds of methods); the
    handlers build one per call. moto intercepts every client, so reusing them changes
    nothing the tests assert on and keeps the suite within seconds.
    """
    key = (args, tuple(sorted(kwargs.items())))
    if key not in _CLIENTS:
        _CLIENTS[key] = _make_client(*args, **kwargs)
    return _CLIENTS[key]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_EC2",
        "AWS_ENDPOINT_URL_SSM",
        "HELPER_MODE",
        "HELPER_INSTANCE_IDS",
        "ALLOW_SOURCE_AS_HELPER",
        "VSS_TAG_KEY",
        "VSS_TAG_VALUE",
        "VOLUME_TYPE",
        "COMMAND_TIMEOUT_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "VssRestore")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "vss-restore")
    monkeypatch.setenv("DISK_TOOL_DOCUMENT", DISK_TOOL_DOCUMENT)
    monkeypatch.setenv("LEDGER_TABLE", LEDGER_TABLE)
    monkeypatch.setattr(boto3, "client", _reused_client)
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="vss-restore-unit",
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:vss-restore-unit",
        aws_request_id="00000000-0000-4000-8000-000000000000",
        get_remaining_time_in_millis=lambda: 30_000,  # the template's Timeout, just started
    )


_STUBBED_CLIENTS: dict[str, Any] = {}


@pytest.fixture
def stubbed(aws_env: None) -> Iterator[Callable[[str], tuple[Any, Stubber]]]:
    """A real boto3 client and its Stubber; every queued response must have been used."""
    stubbers: list[Stubber] = []

    def make(service: str) -> tuple[Any, Stubber]:
        if service not in _STUBBED_CLIENTS:  # apart from the handlers' clients
            _STUBBED_CLIENTS[service] = boto3.session.Session().client(service, region_name=REGION)
        client = _STUBBED_CLIENTS[service]
        stubber = Stubber(client)
        stubber.activate()
        stubbers.append(stubber)
        return client, stubber

    yield make
    for stubber in stubbers:  # the clients are shared: free them before judging the test
        stubber.deactivate()
    for stubber in stubbers:
        stubber.assert_no_pending_responses()


@pytest.fixture
def emitted_metrics(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[str]]:
    """The metric names in the CloudWatch EMF lines printed since the last call."""
    return lambda: _metric_names(capsys.readouterr().out)


def _metric_names(stdout: str) -> list[str]:
    names = []
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record:
            for directive in record["_aws"]["CloudWatchMetrics"]:
                names.extend(metric["Name"] for metric in directive["Metrics"])
    return names


@dataclass
class World:
    """A moto account with a Windows helper and one VSS-tagged snapshot of a data volume."""

    ec2: Any
    ssm: Any
    helper_id: str
    source_volume_id: str
    snapshot_id: str
    execution: str
    helper_zone: str = HELPER_ZONE

    @property
    def backend(self) -> Any:
        return ec2_backends[DEFAULT_ACCOUNT_ID][REGION]

    def event(
        self, name: str, *, volume: str = "", consistent: str = "", command: str = ""
    ) -> dict[str, Any]:
        """A sample with its fake IDs replaced by this world's (and by the ones given)."""
        replace = {FAKE_SNAPSHOT: self.snapshot_id, FAKE_HELPER: self.helper_id}
        for fake, real in ((FAKE_VOLUME, volume), (FAKE_CONSISTENT, consistent)):
            if real:
                replace[fake] = real
        if command:
            replace[FAKE_COMMAND] = command
        event = load_sample(name, replace)
        if "helper" in event:
            event["helper"]["availability_zone"] = self.helper_zone
        return event

    def launch(
        self,
        *,
        windows: bool = True,
        instance_tags: dict[str, str] | None = None,
        mappings: tuple[str, ...] = (),
    ) -> str:
        """A running instance in the helper's zone, tagged as a helper unless told otherwise."""
        if instance_tags is None:
            instance_tags = {tags.HELPER: "true"}
        launched = self.ec2.run_instances(
            ImageId=WINDOWS_AMI if windows else LINUX_AMI,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.large",
            Placement={"AvailabilityZone": HELPER_ZONE},
            BlockDeviceMappings=[
                {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 30}},
                *({"DeviceName": name, "Ebs": {"VolumeSize": 1}} for name in mappings),
            ],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags.as_list(instance_tags)}]
            if instance_tags
            else [],
        )
        instance_id = str(launched["Instances"][0]["InstanceId"])
        if windows:
            # Without its AMI list, moto cannot know the platform: say it as EC2 would.
            self.backend.get_instance(instance_id).platform = "windows"
        return instance_id

    def temporary_volume(
        self,
        *,
        source: str = "",
        execution: str = "",
        volume_tags: dict[str, str] | None = None,
    ) -> str:
        """A volume like the workflow makes (tagged ours), unless other tags are given."""
        if volume_tags is None:
            volume_tags = {
                tags.RESOURCE: tags.TEMPORARY_VOLUME,
                tags.SOURCE_SNAPSHOT: source or self.snapshot_id,
                tags.EXECUTION: execution or self.execution,
            }
        created = self.ec2.create_volume(
            SnapshotId=self.snapshot_id,
            AvailabilityZone=HELPER_ZONE,
            VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": tags.as_list(volume_tags)}],
        )
        return str(created["VolumeId"])

    def attach(self, volume_id: str, device: str, instance_id: str = "") -> None:
        self.ec2.attach_volume(
            VolumeId=volume_id, InstanceId=instance_id or self.helper_id, Device=device
        )

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        found = self.ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])[
            "Volumes"
        ]
        return dict(found[0]) if found else None

    def snapshot_tags(self, snapshot_id: str) -> dict[str, str]:
        found = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
        return tags.as_dict(found[0].get("Tags"))

    def set_volume_state(self, volume_id: str, state: str) -> None:
        """Put a volume in a state moto never reaches by itself (creating, error)."""
        volume = self.backend.get_volume(volume_id)
        volume.__class__ = type(
            f"{state.title()}Volume", (type(volume),), {"status": property(lambda _: state)}
        )


@pytest.fixture
def world(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.create_document(
            Name=DISK_TOOL_DOCUMENT,
            DocumentType="Command",
            DocumentFormat="JSON",
            Content=json.dumps(
                {
                    "schemaVersion": "2.2",
                    "description": "stand-in for template.yaml's DiskToolDocument",
                    "mainSteps": [
                        {
                            "action": "aws:runPowerShellScript",
                            "name": "DiskTool",
                            "inputs": {"runCommand": ["exit 1"]},
                        }
                    ],
                }
            ),
        )
        create_ledger(boto3.client("dynamodb", region_name=REGION))
        # The backup's facts as the samples state them ("source" in the workflow state).
        source = load_sample("prepare_helper")
        world = World(ec2, ssm, "", "", "", source["execution"])
        world.source_volume_id = ec2.create_volume(Size=30, AvailabilityZone=SOURCE_ZONE)[
            "VolumeId"
        ]
        world.helper_id = world.launch()
        defaults = Settings()
        world.snapshot_id = ec2.create_snapshot(
            VolumeId=world.source_volume_id,
            Description="nightly VSS backup",
            TagSpecifications=[
                {
                    "ResourceType": "snapshot",
                    "Tags": tags.as_list(
                        {
                            defaults.vss_tag_key: defaults.vss_tag_value,
                            tags.SHADOW_COPY_ID: source["source"]["shadow_copy_id"],
                            tags.SHADOW_SET_ID: source["source"]["shadow_set_id"],
                            tags.INSTANCE_ID: source["source"]["instance_id"],
                            tags.DRIVE_LETTERS: "D",
                            tags.DEVICE: "xvdf",
                        }
                    ),
                }
            ],
        )["SnapshotId"]
        yield world


@dataclass
class AlertTopic:
    """The stack's alert topic in moto, and what was published to it."""

    arn: str

    def published(self) -> list[tuple[str, str]]:
        """The (subject, message) pairs published to the topic, in order."""
        from moto.sns import sns_backends

        topic = sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[self.arn]
        return [(subject, message) for _, message, subject, *_ in topic.sent_notifications]


@pytest.fixture
def alert_topic(world: World, monkeypatch: pytest.MonkeyPatch) -> AlertTopic:
    arn = str(boto3.client("sns").create_topic(Name="vss-restore-alerts")["TopicArn"])
    monkeypatch.setenv("ALERT_TOPIC_ARN", arn)
    return AlertTopic(arn)


@pytest.fixture
def detaches(world: World) -> Iterator[list[dict[str, Any]]]:
    """The DetachVolume calls the handlers make (the test session gives them one client)."""
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    events = boto3.client("ec2").meta.events
    events.register("provide-client-params.ec2.DetachVolume", record)
    yield sent
    events.unregister("provide-client-params.ec2.DetachVolume", record)
