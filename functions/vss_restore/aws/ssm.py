"""SSM adapter: the helper's agent status and our Run Command invocations."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from vss_restore.aws import error_code, throttling_is_transient

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


# A command's statuses before it ends (SSM API Reference, Command.Status).
UNFINISHED = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})


@dataclass(frozen=True)
class Command:
    command_id: str
    action: str  # the disk tool's Action parameter: Inspect, Revert or Check
    status: str


class Ssm:
    def __init__(self, client: "SSMClient | None" = None) -> None:
        self._client = client

    @property
    def client(self) -> "SSMClient":
        if self._client is None:
            self._client = boto3.client("ssm")
        return self._client

    def instance_information(self, instance_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The SSM agents of these instances that are registered, by instance ID."""
        with throttling_is_transient():
            pages = self.client.get_paginator("describe_instance_information").paginate(
                Filters=[{"Key": "InstanceIds", "Values": list(instance_ids)}]
            )
            return {
                str(info["InstanceId"]): dict(info)
                for page in pages
                for info in page["InstanceInformationList"]
            }

    def parameter(self, name: str) -> str | None:
        """An SSM parameter's value (AWS's public ones included); None if there is none."""
        with throttling_is_transient():
            try:
                return str(self.client.get_parameter(Name=name)["Parameter"]["Value"])
            except ClientError as exc:
                if error_code(exc) in {"ParameterNotFound", "ValidationException"}:
                    return None
                raise

    def send_command(
        self,
        *,
        document: str,
        instance_id: str,
        parameters: dict[str, list[str]],
        timeout_seconds: int,
        comment: str,
    ) -> str:
        with throttling_is_transient():
            sent = self.client.send_command(
                DocumentName=document,
                InstanceIds=[instance_id],
                Parameters=parameters,
                TimeoutSeconds=timeout_seconds,
                Comment=comment[:100],
            )
        return str(sent["Command"]["CommandId"])

    def invocation(self, command_id: str, instance_id: str) -> dict[str, Any] | None:
        """The invocation, or None while SSM does not know it yet (eventual consistency)."""
        with throttling_is_transient():
            try:
                return dict(
                    self.client.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
                )
            except ClientError as exc:
                if error_code(exc) == "InvocationDoesNotExist":
                    return None
                raise

    def unfinished_commands(self, instance_id: str, document: str, volume_id: str) -> list[Command]:
        """Our document's commands on the instance for this volume that have not ended
        (Pending, InProgress, Delayed or Cancelling), oldest first."""
        with throttling_is_transient():
            pages = self.client.get_paginator("list_commands").paginate(InstanceId=instance_id)
            found = [
                Command(
                    str(command["CommandId"]),
                    (command.get("Parameters") or {}).get("Action", [""])[0],
                    str(command.get("Status", "")),
                )
                for page in pages
                for command in page["Commands"]
                if command.get("DocumentName") == document
                and (command.get("Parameters") or {}).get("VolumeId") == [volume_id]
                and command.get("Status") in UNFINISHED
            ]
        return found

    def cancel(self, command_id: str, instance_id: str) -> None:
        """Ask the agent to stop the command (SSM: Cancelling, then Cancelled)."""
        with throttling_is_transient():
            self.client.cancel_command(CommandId=command_id, InstanceIds=[instance_id])
