"""The AWS account the CLI talks to, and where the stack's workflow and VSS tag are in it.

Credentials, profile, region and endpoint come from boto3's own settings (the environment,
~/.aws, --profile, --region), so the same commands work against AWS and the simulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from operator_cli.errors import NO_REGION, NoStack, OperatorError
from vss_restore.settings import STATE_MACHINE_ARN, Settings

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_stepfunctions import SFNClient

DEFAULT_STACK = "vss-restore"
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


@dataclass(frozen=True)
class Where:
    """What the operator said about where to look (options or environment)."""

    stack: str = DEFAULT_STACK
    profile: str | None = None
    region: str | None = None
    state_machine_arn: str = ""  # instead of the stack's StateMachineArn output
    vss_tag: tuple[str, str] | None = None  # instead of the stack's VssTagKey/VssTagValue


def parse_vss_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise OperatorError(
            f"--vss-tag {text!r} is not KEY=VALUE, e.g. ConsistentSnapshot=WindowsVSS"
        )
    return key, value


def check_state_machine_arn(text: str) -> str:
    if not STATE_MACHINE_ARN.match(text):
        raise OperatorError(f"--state-machine {text!r} is not a state machine ARN")
    return text


def check_stack_name(text: str) -> str:
    if not _STACK_NAME.match(text):
        raise OperatorError(f"--stack {text!r} is not a CloudFormation stack name")
    return text


class Account:
    """boto3 clients for one region, created when first needed; the stack, read once."""

    def __init__(self, where: Where, session: boto3.Session | None = None) -> None:
        self.where = where
        self._session = session

    @cached_property
    def session(self) -> boto3.Session:
        return self._session or boto3.Session(
            profile_name=self.where.profile, region_name=self.where.region
        )

    @cached_property
    def region(self) -> str:
        region = self.session.region_name
        if not region:
            raise OperatorError(NO_REGION)
        return region

    def region_for_messages(self) -> str:
        """The region, for a message about something else that went wrong."""
        try:
            return self.session.region_name or "no region"
        except BotoCoreError:  # the profile itself is the problem
            return self.where.region or "the configured region"

    def _client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region)  # type: ignore[call-overload]

    @cached_property
    def ec2(self) -> EC2Client:
        client: EC2Client = self._client("ec2")
        return client

    @cached_property
    def ebs(self) -> Any:
        """EBS direct APIs: the SDK's standard retries (5 attempts) absorb brief throttling."""
        return self.session.client(
            "ebs",
            region_name=self.region,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )

    @cached_property
    def sfn(self) -> SFNClient:
        client: SFNClient = self._client("stepfunctions")
        return client

    @cached_property
    def account_id(self) -> str:
        """Whose account the credentials reach (STS GetCallerIdentity needs no permission)."""
        return str(self._client("sts").get_caller_identity()["Account"])

    @cached_property
    def cloudformation(self) -> CloudFormationClient:
        client: CloudFormationClient = self._client("cloudformation")
        return client

    @cached_property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")

    @cached_property
    def events(self) -> Any:
        return self._client("events")

    @cached_property
    def sns(self) -> Any:
        return self._client("sns")

    @cached_property
    def ssm(self) -> Any:
        return self._client("ssm")

    @cached_property
    def iam(self) -> Any:
        return self._client("iam")

    @cached_property
    def service_quotas(self) -> Any:
        return self._client("service-quotas")

    # -- the stack --------------------------------------------------------------------------
    @property
    def stack(self) -> tuple[dict[str, str], dict[str, str]]:
        """The stack's outputs and parameters, by key (NoStack when it is not there)."""
        return self._stack

    @cached_property
    def _stack(self) -> tuple[dict[str, str], dict[str, str]]:
        """The stack's outputs and parameters, by key."""
        name = self.where.stack
        try:
            stacks = self.cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ValidationError" and "does not exist" in error.get(
                "Message", ""
            ):
                raise NoStack(name, self.region) from exc
            raise
        if not stacks:
            raise NoStack(name, self.region)
        stack = stacks[0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        parameters = {
            p["ParameterKey"]: p.get("ResolvedValue") or p.get("ParameterValue", "")
            for p in stack.get("Parameters", [])
        }
        return outputs, parameters

    @cached_property
    def state_machine_arn(self) -> str:
        if self.where.state_machine_arn:
            return self.where.state_machine_arn
        outputs, _ = self._stack
        arn = outputs.get("StateMachineArn", "")
        if not arn:
            raise OperatorError(
                f"stack {self.where.stack} in {self.region} has no output StateMachineArn: "
                "is it a vss-restore stack? Give --stack, or --state-machine ARN"
            )
        return arn

    @cached_property
    def settings(self) -> Settings:
        """What counts as a VSS snapshot: the stack's VssTagKey=VssTagValue (or --vss-tag)."""
        if self.where.vss_tag is not None:
            key, value = self.where.vss_tag
        elif self.where.state_machine_arn:
            # Told where the workflow is: CloudFormation is not asked for anything.
            key, value = Settings.vss_tag_key, Settings.vss_tag_value
        else:
            _, parameters = self._stack
            key = parameters.get("VssTagKey") or Settings.vss_tag_key
            value = parameters.get("VssTagValue") or Settings.vss_tag_value
        return Settings(vss_tag_key=key, vss_tag_value=value)

    @property
    def vss_tag(self) -> str:
        return f"{self.settings.vss_tag_key}={self.settings.vss_tag_value}"
