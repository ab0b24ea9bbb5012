"""`make e2e`: the acceptance kit on a real account (docs/real-account.md)."""

import argparse
import os
import secrets
import sys
from collections.abc import Sequence

import boto3

from e2e import cost, gate
from e2e.account import Account
from e2e.aws import AwsStage, SsmWindows
from e2e.kit import Kit


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e", description=__doc__)
    parser.add_argument("--region", default=os.environ.get("E2E_REGION", ""))
    parser.add_argument("--run-id", default="", help="default: a new random one")
    args = parser.parse_args(argv)
    session = boto3.session.Session()
    region = args.region or os.environ.get("AWS_REGION", "")

    print(cost.statement(region), flush=True)
    refused = gate.refusal(os.environ, session.get_credentials() is not None, region)
    if refused:
        print(f"not run: {refused}", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(line, flush=True)

    run_id = args.run_id or secrets.token_hex(4)
    account = Account(region, session)
    say(f"run {run_id} in account {session.client('sts').get_caller_identity()['Account']}")
    kit = Kit(account, AwsStage(account, run_id, say), SsmWindows(account, say), run_id, say=say)
    outcome = kit.run()
    print("PASSED" if outcome.ok else "FAILED", flush=True)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
