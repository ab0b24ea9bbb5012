"""The pre-flight: read the stack and the account, and say per check OK or what to do.

Every check reads only (Describe/List/Get calls); nothing here changes the account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from operator_cli import doctor_fleet, doctor_instances
from operator_cli.account import Account
from operator_cli.doctor_check import Check
from operator_cli.errors import NoStack
from vss_restore import clock, tags
from vss_restore.logic.helper import Source, problems
from vss_restore.logic.unverified import judge
from vss_restore.settings import Settings

# The outputs the operator's tools and the set-up read (template.yaml's Outputs).
REQUIRED_OUTPUTS = ("StateMachineArn", "AlertTopicArn", "BackupInstancePolicyArn", "LedgerTable")
# What ListSubscriptionsByTopic says of a subscription nobody has confirmed yet (SNS API
# reference, ListSubscriptionsByTopic / Subscription.SubscriptionArn).
PENDING = "PendingConfirmation"


def checks(
    account: Account, now: datetime | None = None, *, on_instances: bool = False
) -> list[Check]:
    """Every check, in the order an operator would fix them. Only with `on_instances` is
    anything run on the backed-up instances (doctor_instances.py)."""
    try:
        outputs, parameters = account.stack
    except NoStack:
        where = f"no stack {account.where.stack} in {account.region}"
        return [Check("stack", False, where, "deploy it (make deploy), or give --stack NAME")]
    found = [_stack(account, outputs, parameters)]
    machine = outputs.get("StateMachineArn", "")
    if machine:
        found.append(_workflow(account, machine))
        found += _rules(account, machine)
    found.append(_alerts(account, outputs.get("AlertTopicArn", "")))
    settings = _settings(parameters)
    if settings.helper_mode == "fleet":
        found += doctor_fleet.checks(account, parameters, outputs, now or clock.now())
    else:
        found += _helpers(account, parameters, settings)
    found += _backed_up(
        account, outputs.get("BackupInstancePolicyArn", ""), settings, now, on_instances
    )
    return found


def _settings(parameters: dict[str, str]) -> Settings:
    return Settings(
        vss_tag_key=parameters.get("VssTagKey") or Settings.vss_tag_key,
        vss_tag_value=parameters.get("VssTagValue") or Settings.vss_tag_value,
        helper_mode=parameters.get("HelperMode") or Settings.helper_mode,
        allow_source_as_helper=parameters.get("AllowSourceAsHelper", "false") == "true",
    )


def _stack(account: Account, outputs: dict[str, str], parameters: dict[str, str]) -> Check:
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    where = f"stack {account.where.stack} in {account.region}"
    if missing:
        return Check(
            "stack",
            False,
            f"{where} has no output {', '.join(missing)}",
            "is it a vss-restore stack? Deploy this version (make deploy)",
        )
    return Check("stack", True, f"{where}: {len(parameters)} parameters, outputs present")


def _workflow(account: Account, machine: str) -> Check:
    try:
        status = account.sfn.describe_state_machine(stateMachineArn=machine).get("status")
    except ClientError as exc:
        return Check("workflow", False, f"{machine}: {exc}", "deploy the stack again")
    if status != "ACTIVE":
        return Check("workflow", False, f"{machine} is {status}", "deploy the stack again")
    return Check("workflow", True, f"{machine} is ACTIVE")


def _rules(account: Account, machine: str) -> list[Check]:
    names = account.events.list_rule_names_by_target(TargetArn=machine).get("RuleNames", [])
    if not names:
        return [
            Check(
                "event rules",
                False,
                "no EventBridge rule starts the workflow: no snapshot is restored by itself",
                "deploy the stack again (its rules are part of it)",
            )
        ]
    found = []
    for name in names:
        state = account.events.describe_rule(Name=name).get("State", "")
        if state == "ENABLED":
            found.append(Check(f"rule {name}", True, "enabled"))
        else:
            found.append(
                Check(
                    f"rule {name}",
                    False,
                    f"{state.lower() or 'not enabled'}: its snapshots start no restore",
                    f"aws events enable-rule --name {name}",
                )
            )
    return found


def _alerts(account: Account, topic: str) -> Check:
    if not topic:
        return Check("alerts", False, "the stack has no alert topic", "deploy this version")
    try:
        listed = account.sns.list_subscriptions_by_topic(TopicArn=topic)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NotFound":
            raise
        return Check(
            "alerts",
            False,
            f"the stack's alert topic {topic} does not exist here",
            "update the stack (sam deploy) so that it creates its topic again",
        )
    subscriptions = listed.get("Subscriptions", [])
    return alerts_check(topic, subscriptions)


def alerts_check(topic: str, subscriptions: list[dict[str, Any]]) -> Check:
    if not subscriptions:
        return Check(
            "alerts",
            False,
            f"nobody receives the alerts of {topic}",
            "deploy with AlertEmail=you@example.com (then confirm the email), or subscribe",
        )
    pending = [s.get("Endpoint", "?") for s in subscriptions if s.get("SubscriptionArn") == PENDING]
    if pending:
        return Check(
            "alerts",
            False,
            f"not confirmed yet: {', '.join(pending)}",
            "open the email AWS Notifications sent and confirm the subscription",
        )
    endpoints = ", ".join(f"{s.get('Protocol')}:{s.get('Endpoint')}" for s in subscriptions)
    return Check("alerts", True, f"delivered to {endpoints}")


def _helpers(account: Account, parameters: dict[str, str], settings: Settings) -> list[Check]:
    ids = [i.strip() for i in parameters.get("HelperInstanceIds", "").split(",") if i.strip()]
    if not ids:
        return [
            Check(
                "helpers",
                False,
                "HelperInstanceIds is empty: every restore fails with HelperNotUsable",
                "deploy with HelperInstanceIds=i-... (Windows, tagged "
                f"{tags.HELPER}=true, SSM Online, not backed up)",
            )
        ]
    # A filter, not InstanceIds: a helper that no longer exists is a finding, not an error.
    instances = _instances(account, Filters=[{"Name": "instance-id", "Values": ids}])
    agents = _agents(account, ids)
    found = []
    for instance_id in ids:
        wrong = problems(
            instance_id, instances.get(instance_id), agents.get(instance_id), Source(), settings
        )
        found.append(
            Check(f"helper {instance_id}", not wrong, "; ".join(wrong) or "usable", _fix(wrong))
        )
    return found


def _fix(wrong: list[str]) -> str:
    return 'see docs/helpers.md, "The helper"' if wrong else ""


def _backed_up(
    account: Account, policy: str, settings: Settings, now: datetime | None, on_instances: bool
) -> list[Check]:
    instances = list(
        _instances(
            account,
            Filters=[
                {"Name": f"tag:{settings.vss_tag_key}", "Values": [settings.vss_tag_value]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]},
            ],
        ).values()
    )
    tag = f"{settings.vss_tag_key}={settings.vss_tag_value}"
    if not instances:
        return [
            Check(
                "backed-up instances",
                False,
                f"no instance is tagged {tag}: the nightly backup has nothing to do",
                f"tag the Windows instances to back up {tag}",
            )
        ]
    agents = _agents(account, [str(i["InstanceId"]) for i in instances])
    verdicts = _verdicts(account, instances, settings, now or clock.now())
    found = [
        _instance(account, instance, agents.get(str(instance["InstanceId"])), policy, verdicts)
        for instance in instances
    ]
    if on_instances:  # those whose agent can run it: the others' checks say why not
        reachable = [
            i
            for i, agent in agents.items()
            if agent.get("PingStatus") == "Online" and agent.get("PlatformType") == "Windows"
        ]
        found += doctor_instances.checks(account, reachable)
    return found


def _instance(
    account: Account,
    instance: dict[str, Any],
    agent: dict[str, Any] | None,
    policy: str,
    verdicts: dict[str, str],
) -> Check:
    instance_id = str(instance["InstanceId"])
    wrong, fixes = [], []
    if agent is None or agent.get("PingStatus") != "Online":
        wrong.append(f"SSM {agent.get('PingStatus') if agent else 'not registered'}")
        fixes.append("the SSM agent running, AmazonSSMManagedInstanceCore, a route to SSM")
    elif agent.get("PlatformType") != "Windows":
        wrong.append(f"not Windows ({agent.get('PlatformType')})")
        fixes.append("untag it: the backup is DiskShadow")
    if instance.get("MetadataOptions", {}).get("HttpTokens") != "required":
        wrong.append("IMDSv1 allowed")
        fixes.append(
            f"aws ec2 modify-instance-metadata-options --instance-id {instance_id}"
            " --http-tokens required"
        )
    if policy and policy not in _role_policies(account, instance):
        wrong.append("its role lacks BackupInstancePolicy")
        fixes.append(f"attach {policy} to the role of its instance profile")
    verdict = verdicts.get(instance_id, "")
    if verdict.startswith("unverified"):
        wrong.append(verdict)
    found = "; ".join(wrong) if wrong else f"SSM Online, IMDSv2, backup policy; {verdict}"
    return Check(f"instance {instance_id}", not wrong, found, "; ".join(fixes))


def _verdicts(
    account: Account, instances: list[dict[str, Any]], settings: Settings, now: datetime
) -> dict[str, str]:
    """Per instance: its last verification as the hourly alarm judges it (26 h)."""
    snapshots: list[dict[str, Any]] = [
        dict(s)
        for key, value in (
            (settings.vss_tag_key, settings.vss_tag_value),
            (tags.AWS_APP_CONSISTENT, "true"),
        )
        for page in account.ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], Filters=[{"Name": f"tag:{key}", "Values": [value]}]
        )
        for s in page["Snapshots"]
        if s.get("State") == "completed"
    ]
    findings = judge(instances, snapshots, settings, now)
    said = dict.fromkeys(findings.verified, "verified in the last 26 h")
    said |= dict.fromkeys(findings.launched_recently, "launched in the last 26 h")
    said |= dict.fromkeys(findings.stopped, "stopped")
    for found in findings.unverified:
        last = f", last verified {found.last_verified}" if found.last_verified else ""
        said[found.instance_id] = f"unverified: {found.why}{last}"
    return said


def _instances(account: Account, **query: Any) -> dict[str, dict[str, Any]]:
    return {
        str(instance["InstanceId"]): dict(instance)
        for page in account.ec2.get_paginator("describe_instances").paginate(**query)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    }


def _agents(account: Account, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not instance_ids:
        return {}
    found = account.ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": instance_ids}]
    )["InstanceInformationList"]
    return {str(agent["InstanceId"]): dict(agent) for agent in found}


def _role_policies(account: Account, instance: dict[str, Any]) -> set[str]:
    profile = instance.get("IamInstanceProfile", {}).get("Arn", "")
    if not profile:
        return set()
    name = profile.rsplit("/", 1)[-1]
    roles = account.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
    return {
        policy["PolicyArn"]
        for role in roles
        for policy in account.iam.list_attached_role_policies(RoleName=role["RoleName"])[
            "AttachedPolicies"
        ]
    }
