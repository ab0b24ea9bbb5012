"""Step Functions adapter: start restores by name, ask whether an execution still runs, and
complete a task that waits for a token."""

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from vss_restore.aws import error_code, throttling_is_transient

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

RUNNING = "RUNNING"
# The task has ended already (completed, timed out, its execution stopped): nothing to do.
TASK_CLOSED = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution of that name has (or would have) on that state machine."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    return f"{prefix}:execution:{machine}:{name}"


class StepFunctions:
    def __init__(self, client: "SFNClient | None" = None) -> None:
        self._client = client

    @property
    def client(self) -> "SFNClient":
        if self._client is None:
            self._client = boto3.client("stepfunctions")
        return self._client

    def status(self, execution: str) -> str:
        """RUNNING, SUCCEEDED, FAILED, ...; "" for an execution that does not exist."""
        with throttling_is_transient():
            try:
                return str(self.client.describe_execution(executionArn=execution)["status"])
            except ClientError as exc:
                if error_code(exc) in {"ExecutionDoesNotExist", "InvalidArn"}:
                    return ""
                raise

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> bool:
        """Start the named execution; False when one of that name exists already.

        Step Functions starts a name once (90 days): the same name and input while it
        runs gives the running one back, anything else is ExecutionAlreadyExists.
        """
        with throttling_is_transient():
            try:
                self.client.start_execution(
                    stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
                )
            except ClientError as exc:
                if error_code(exc) == "ExecutionAlreadyExists":
                    return False
                raise
        return True

    def succeed(self, token: str, output: dict[str, Any]) -> bool:
        """Complete the waiting task with this output; False if it had ended already."""
        with throttling_is_transient():
            try:
                self.client.send_task_success(taskToken=token, output=json.dumps(output))
            except ClientError as exc:
                if error_code(exc) in TASK_CLOSED:
                    return False
                raise
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        """Fail the waiting task with this error name; False if it had ended already."""
        with throttling_is_transient():
            try:
                self.client.send_task_failure(taskToken=token, error=error[:256], cause=cause)
            except ClientError as exc:
                if error_code(exc) in TASK_CLOSED:
                    return False
                raise
        return True
