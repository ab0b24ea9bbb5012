"""A helper lost (stopped or terminated by someone): every restore whose task waits for a
disk tool command there fails at once with HelperLost, instead of at the command's or the
state's timeout.

EC2 sends "EC2 Instance State-change Notification" (source aws.ec2, `detail.instance-id`,
`detail.state`: pending, running, stopping, stopped, shutting-down, terminated) for every
instance of the account (EC2 User Guide, "State change events for Amazon EC2 instances"). It
carries no tags, so the rule fires for every instance: what is ours is read from the ledger,
where each command waited for is kept in the `line` index under `commands#<instance>` while
its token is live (aws/ledger.py). One Query per event; nothing else when nobody waits.
"""

import json
from dataclasses import dataclass

from vss_restore import clock
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.states import StepFunctions
from vss_restore.errors import HelperLost

# The states of an instance that will not finish a command (EC2 User Guide, "Amazon EC2
# instance state changes"): the agent is shut down with Windows, or gone with the instance.
LOST_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})
# The longest a task waits for a disk tool command's token: the Revert's and the Check's
# TimeoutSeconds in statemachine/restore.asl.json (a test reads them). A wait queued before
# that has no live token left: the Query passes it by.
LONGEST_COMMAND_WAIT_SECONDS = 7800
# Restores waiting on commands on one helper: at most its HelperConcurrency (one command
# each); a page holds far more.
MAX_WAITS = 100
MAX_CAUSE = 4000

FAILED = "failed"
CLOSED = "the task had ended already"


@dataclass(frozen=True)
class Outcome:
    wait: str  # the ledger key: command#<volume>#<action>
    outcome: str


def helper_lost(
    ledger: Ledger, states: StepFunctions, instance_id: str, state: str, at: str
) -> list[Outcome]:
    """Fail with HelperLost every task that waits for a command on the instance, now that it
    is `state` (from the event, at `at`); [] for a state that loses nothing, or nobody."""
    if state not in LOST_STATES:
        return []
    since_ms = (int(clock.now().timestamp()) - LONGEST_COMMAND_WAIT_SECONDS) * 1000
    outcomes = []
    for key in ledger.waits_on(instance_id, since_ms, MAX_WAITS):
        waiting = ledger.waiting(key)
        if waiting is None or not waiting.token:
            continue
        _, volume_id, action = [*key.split("#"), "", ""][:3]
        message = (
            f"helper {instance_id} is {state} (EC2 state change at {at}): the disk tool's"
            f" {action} of {volume_id} (command {waiting.operation}) cannot finish there"
        )
        cause = json.dumps({"errorType": HelperLost.__name__, "errorMessage": message})
        failed = states.fail(waiting.token, HelperLost.__name__, cause[:MAX_CAUSE])
        ledger.stop_indexing_wait(key, waiting.token)
        outcomes.append(Outcome(key, FAILED if failed else CLOSED))
    return outcomes
