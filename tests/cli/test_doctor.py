"""`vss-restore doctor`: the pre-flight, against a healthy and a misconfigured account."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from operator_cli.doctor import PENDING, alerts_check
from simulator import Simulation, load
from tests.cli.harness import vss_restore
from vss_restore import tags

VSS = {"ConsistentSnapshot": "WindowsVSS"}


def estate() -> dict[str, Any]:
    """Two backed-up Windows servers (for a week), a helper, and last night's backup."""
    return {
        "name": "cli-doctor",
        "start": "2026-11-25T00:00:00Z",
        "parameters": {"HelperMode": "named", "HelperInstanceIds": "${instance:helper}"},
        "instances": {
            "web1": {
                "tags": VSS,
                "launched_before": 7 * 86400,
                "volumes": [
                    {"alias": "C", "size": 30, "drive_letters": ["C"], "system": True},
                    {"alias": "D", "device": "xvdb", "size": 50, "drive_letters": ["D"]},
                ],
            },
            "sql1": {"tags": VSS, "launched_before": 7 * 86400},
            "helper": {"helper": True},
        },
        "steps": [{"backup": "web1", "name": "night1"}, {"backup": "sql1", "name": "night1sql"}],
    }


@contextmanager
def after_the_night() -> Iterator[tuple[Simulation, Any]]:
    with Simulation(load(estate())) as simulation:
        report = simulation.run()
        assert report.ok, report.failures
        region = simulation.world.region
        sns: Any = boto3.client("sns", region_name=region)
        topic = simulation.stack.outputs["AlertTopicArn"]
        yield (
            simulation,
            sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com"),
        )


def doctor(simulation: Simulation, *more: str) -> Any:
    return vss_restore("doctor", "--region", simulation.world.region, *more)


def test_a_healthy_account_passes_every_check() -> None:
    with after_the_night() as (simulation, _):
        said = doctor(simulation)
        as_json = doctor(simulation, "--json")

    assert said.code == 0, said.out
    assert said.out.endswith("all checks passed\n")
    checks = json.loads(as_json.out)["checks"]
    assert as_json.code == 0
    names = [c["name"] for c in checks]
    helper = simulation.aliases.instances["helper"]
    web1 = simulation.aliases.instances["web1"]
    assert names[:2] == ["stack", "workflow"]
    assert names[2].startswith("rule vss-restore-")
    assert f"helper {helper}" in names
    assert f"instance {web1}" in names
    web1_check = next(c for c in checks if c["name"] == f"instance {web1}")
    assert web1_check["found"].endswith("verified in the last 26 h")
    assert next(c for c in checks if c["name"] == "alerts")["found"] == (
        "delivered to email:ops@example.com"
    )


def test_each_misconfiguration_fails_its_own_check_with_what_to_do() -> None:
    with after_the_night() as (simulation, subscription):
        region = simulation.world.region
        ids = simulation.aliases.instances
        events: Any = boto3.client("events", region_name=region)
        ec2: Any = boto3.client("ec2", region_name=region)
        iam: Any = boto3.client("iam", region_name=region)
        sns: Any = boto3.client("sns", region_name=region)
        policy = simulation.stack.outputs["BackupInstancePolicyArn"]
        healthy = json.loads(doctor(simulation, "--json").out)["checks"]
        # Someone disables a rule, unsubscribes the alerts, stops the helper, allows IMDSv1
        # on web1 and detaches the backup policy from sql1's role.
        rule = next(c["name"] for c in healthy if c["name"].startswith("rule "))[5:]
        events.disable_rule(Name=rule)
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        ec2.stop_instances(InstanceIds=[ids["helper"]])
        ec2.modify_instance_metadata_options(InstanceId=ids["web1"], HttpTokens="optional")
        iam.detach_role_policy(RoleName="instance-sql1", PolicyArn=policy)

        said = doctor(simulation)
        checks = json.loads(doctor(simulation, "--json").out)["checks"]
        failed = {c["name"]: c for c in checks if not c["ok"]}
        other_stack = vss_restore("doctor", "--region", region, "--stack", "vss-other")

    assert said.code == 1
    assert sorted(failed) == sorted(
        [
            f"rule {rule}",
            "alerts",
            f"helper {ids['helper']}",
            f"instance {ids['web1']}",
            f"instance {ids['sql1']}",
        ]
    )
    assert failed[f"rule {rule}"]["fix"] == f"aws events enable-rule --name {rule}"
    assert failed["alerts"]["found"].startswith("nobody receives the alerts")
    assert "is stopped, not running" in failed[f"helper {ids['helper']}"]["found"]
    assert failed[f"instance {ids['web1']}"]["found"] == "IMDSv1 allowed"
    assert "--http-tokens required" in failed[f"instance {ids['web1']}"]["fix"]
    assert failed[f"instance {ids['sql1']}"]["found"] == "its role lacks BackupInstancePolicy"
    assert policy in failed[f"instance {ids['sql1']}"]["fix"]
    assert f"5 of {len(checks)} checks failed" in said.out
    assert f"to do: aws events enable-rule --name {rule}" in said.out
    assert other_stack.code == 1
    assert other_stack.out.splitlines() == [
        f"FAIL  stack  no stack vss-other in {region}",
        "             to do: deploy it (make deploy), or give --stack NAME",
        "1 of 1 checks failed",
    ]


def test_an_unconfirmed_email_subscription_fails_the_alerts_check() -> None:
    # moto confirms at once; SNS lists an unconfirmed one with SubscriptionArn
    # "PendingConfirmation" (API reference, ListSubscriptionsByTopic).
    topic = "arn:aws:sns:us-east-1:123456789012:alerts"
    pending = [{"Protocol": "email", "Endpoint": "ops@example.com", "SubscriptionArn": PENDING}]

    check = alerts_check(topic, pending)

    assert not check.ok
    assert check.found == "not confirmed yet: ops@example.com"


def test_a_backup_whose_instance_role_lacks_the_policy_is_refused() -> None:
    document = estate()
    document["steps"] = []
    with Simulation(load(document)) as simulation:
        iam: Any = boto3.client("iam", region_name=simulation.world.region)
        iam.detach_role_policy(
            RoleName="instance-web1", PolicyArn=simulation.stack.outputs["BackupInstancePolicyArn"]
        )
        refused = ""
        try:
            simulation.estate.backup("web1", None, None, "single", True)  # type: ignore[union-attr]
        except Exception as exc:
            refused = str(exc)
        ec2: Any = boto3.client("ec2", region_name=simulation.world.region)
        made = ec2.describe_snapshots(
            OwnerIds=["self"], Filters=[{"Name": f"tag:{tags.INSTANCE_ID}", "Values": ["*"]}]
        )["Snapshots"]

    assert "UnauthorizedOperation" in refused
    assert "without BackupInstancePolicy" in refused
    assert made == []
