"""Someone stops or terminates an instance (a helper, mid-revert): EC2's states and events,
and what becomes of the SSM agent's commands there.

- States and events: a stop goes `stopping` then `stopped`, a termination `shutting-down`
  then `terminated`; EC2 sends "EC2 Instance State-change Notification" (source aws.ec2,
  `detail.instance-id`, `detail.state`) at each change, untagged, for every instance (EC2
  User Guide, "State change events for Amazon EC2 instances"). moto jumps straight to
  `stopped`/`terminated` and sends nothing: the simulator holds the middle state for
  `instance_stop_seconds` / `instance_terminate_seconds` (MODELLED: no published figure for
  a Windows shutdown; 60 s and 30 s).
- Volumes: a stop leaves them attached (detachable once stopped); a termination detaches
  every EBS volume and deletes those marked DeleteOnTermination (the root volume), keeping a
  volume attached later, which AttachVolume leaves DeleteOnTermination false (EC2 User Guide,
  "Preserve data when an instance is terminated"). moto's TerminateInstances does the same
  (Instance.teardown_defaults): it is called when the termination ends.
- Commands: the agent goes down with Windows. Nothing it was running ends (no Success, no
  Failed: the script's end never runs); a command not started waits as `Delayed` ("the
  target wasn't available ... because the node was stopped"). At the command's expiry, its
  delivery timeout plus its execution timeout, every invocation still `InProgress`,
  `Pending` or `Delayed` becomes `TimedOut` with StatusDetails `DeliveryTimedOut` (SSM API
  Reference, Command `ExpiresAfter`, and GetCommandInvocation `StatusDetails`); its event
  follows. SendCommand to an instance shutting down or terminated is refused
  `InvalidInstanceId` (SSM API Reference, SendCommand: "Invalid states are: Shutting-down
  and Terminated").
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.ec2.models import ec2_backends

from simulator.helpers import Fleet, state_changed
from simulator.world import World, seconds

# EC2 API Reference, InstanceState: the code of each state.
CODES = {"shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
HOW = {"stop": ("stopping", "stopped"), "terminate": ("shutting-down", "terminated")}


def _instance(world: World, instance_id: str) -> Any:
    return ec2_backends[world.account_id][world.region].get_instance(instance_id)


@dataclass
class _Once:
    """Something that happens to an instance once, at `due` (a participant of the clock)."""

    world: World
    fleet: Fleet
    instance_id: str
    how: str
    due: datetime
    done: bool = False

    def next_due(self) -> datetime | None:
        return None if self.done else self.due


class _Ends(_Once):
    """The stop or termination ends: moto's own StopInstances/TerminateInstances, the event."""

    def happen(self, at: datetime) -> None:
        self.done = True
        instance = _instance(self.world, self.instance_id)
        with self.world.instantly():  # EC2 detaches as part of the termination
            if self.how == "terminate":
                instance.terminate()
            else:
                instance.stop()
        if self.how == "terminate":
            helper = self.fleet.launched.get(self.instance_id)
            if helper is not None and helper.terminated_at is None:
                helper.terminated_at = at
            self.world.hosts.pop(self.instance_id, None)
        state_changed(self.world, self.instance_id, HOW[self.how][1], at)


class _Later(_Once):
    """A loss a fault asked for, some seconds after a disk tool action began."""

    def happen(self, at: datetime) -> None:
        self.done = True
        if _instance(self.world, self.instance_id).state in {"pending", "running"}:
            lose(self.world, self.fleet, self.instance_id, self.how, at)


def lose(world: World, fleet: Fleet, instance_id: str, how: str, at: datetime) -> None:
    """Someone stops (`stop`) or terminates (`terminate`) the running instance at `at`."""
    instance = _instance(world, instance_id)
    if instance.state not in {"pending", "running"}:
        raise ValueError(f"{instance_id} is {instance.state}: only a running instance is lost")
    middle, _ = HOW[how]
    instance._state.name, instance._state.code = middle, CODES[middle]
    world.lost[instance_id] = middle
    managed = world.managed.get(instance_id)
    if managed is not None:
        managed.ping_status = "ConnectionLost"
    for happening in world.happenings:
        if getattr(happening, "instance_id", None) == instance_id and hasattr(happening, "lose"):
            happening.lose(at)
    state_changed(world, instance_id, middle, at)
    delay = (
        world.timing.instance_terminate_seconds
        if how == "terminate"
        else world.timing.instance_stop_seconds
    )
    world.happenings.append(_Ends(world, fleet, instance_id, how, at + seconds(delay)))


def install(world: World, fleet: Fleet) -> None:
    """Faults may ask for a loss when a disk tool action begins (Invocation calls this)."""

    def lose_later(instance_id: str, how: str, at: datetime) -> None:
        world.happenings.append(_Later(world, fleet, instance_id, how, at))

    world.lose_instance_at = lose_later
