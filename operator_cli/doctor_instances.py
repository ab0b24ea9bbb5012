"""`doctor --on-instances`: whether each backed-up instance has the PowerShell module the
nightly backup imports (AWS.Tools.EC2), asked through SSM Run Command.

This is the only part of doctor that runs something on the operator's instances, hence its
own flag: one read-only script (it lists modules, it changes nothing), AWS's own document
AWS-RunPowerShellScript, and a bounded wait for the answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from operator_cli.account import Account
from operator_cli.doctor_check import Check

MODULE = "AWS.Tools.EC2"
DOCUMENT = "AWS-RunPowerShellScript"
# Read-only: it lists the module's newest installed version, or says there is none.
SCRIPT = f"""$module = Get-Module -ListAvailable -Name {MODULE} |
    Sort-Object -Property Version -Descending |
    Select-Object -First 1
if ($null -eq $module) {{
    Write-Output '{MODULE}: not installed'
}} else {{
    Write-Output ('{MODULE}: ' + $module.Version)
}}"""
# SendCommand takes at most 50 instance IDs (SSM API Reference, SendCommand.InstanceIds).
BATCH = 50
# SendCommand's TimeoutSeconds (delivery, at least 30) and the script's executionTimeout.
DELIVERY_SECONDS = 60
EXECUTION_SECONDS = 60
POLL_SECONDS = 3.0
# Past this, an instance that has not answered is reported as not answering.
WAIT_SECONDS = DELIVERY_SECONDS + EXECUTION_SECONDS + 30
# GetCommandInvocation's statuses once it has ended (SSM API Reference).
ENDED = frozenset({"Success", "Failed", "Cancelled", "TimedOut", "Undeliverable", "Terminated"})


def checks(account: Account, instance_ids: Sequence[str]) -> list[Check]:
    """One check per instance: the module's version, or what to do."""
    sent: dict[str, str] = {}  # instance -> command
    refused: dict[str, str] = {}  # instance -> why SendCommand refused it
    for start in range(0, len(instance_ids), BATCH):
        batch = list(instance_ids[start : start + BATCH])
        try:
            sent |= dict.fromkeys(batch, _send(account, batch))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            refused |= dict.fromkeys(batch, f"{error.get('Code')}: {error.get('Message')}")
    answers = _answers(account, sent)
    return [
        _refused(i, refused[i]) if i in refused else module_check(i, answers.get(i))
        for i in instance_ids
    ]


def _send(account: Account, instance_ids: list[str]) -> str:
    return str(
        account.ssm.send_command(
            InstanceIds=instance_ids,
            DocumentName=DOCUMENT,
            Comment=f"vss-restore doctor: is {MODULE} installed (read-only)",
            TimeoutSeconds=DELIVERY_SECONDS,
            Parameters={
                "commands": SCRIPT.split("\n"),
                "executionTimeout": [str(EXECUTION_SECONDS)],
            },
        )["Command"]["CommandId"]
    )


def _refused(instance_id: str, why: str) -> Check:
    return Check(
        f"{MODULE} on {instance_id}",
        False,
        f"Run Command refused: {why}",
        f"the operator needs ssm:SendCommand on {DOCUMENT} and the instance (README)",
    )


def _answers(account: Account, sent: dict[str, str]) -> dict[str, dict[str, Any]]:
    answers: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + WAIT_SECONDS
    while len(answers) < len(sent) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        for instance_id, command_id in sent.items():
            if instance_id in answers:
                continue
            try:
                found = account.ssm.get_command_invocation(
                    CommandId=command_id, InstanceId=instance_id
                )
            except ClientError as exc:
                # Not visible for a moment after SendCommand (SSM API Reference,
                # GetCommandInvocation: InvocationDoesNotExist).
                if exc.response.get("Error", {}).get("Code") == "InvocationDoesNotExist":
                    continue
                raise
            if found.get("Status") in ENDED:
                answers[instance_id] = dict(found)
    return answers


def module_check(instance_id: str, answer: dict[str, Any] | None) -> Check:
    name = f"{MODULE} on {instance_id}"
    install = f"on the instance: Install-Module {MODULE} -Scope AllUsers"
    if answer is None:
        return Check(
            name,
            False,
            f"no answer to Run Command in {WAIT_SECONDS} s",
            "is its SSM agent Online (see its instance check)? Then run doctor again",
        )
    status = answer.get("Status")
    said = str(answer.get("StandardOutputContent", "")).strip()
    if status != "Success" or not said.startswith(f"{MODULE}: "):
        error = str(answer.get("StandardErrorContent", "")).strip()[:200]
        return Check(
            name,
            False,
            f"the check did not run: {status} {error}".rstrip(),
            "see the command in Systems Manager, Run Command, Command history",
        )
    version = said.removeprefix(f"{MODULE}: ").splitlines()[0]
    if version == "not installed":
        return Check(name, False, "not installed: the nightly backup fails", install)
    return Check(name, True, f"version {version}")
