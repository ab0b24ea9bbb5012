"""Named errors: Step Functions retries and catches them by class name.

Transient errors are worth retrying (the state machine's Retry lists them); everything
else derives from PermanentError and goes straight to the failure path.
"""


class RestoreError(Exception):
    """Base class of every error the handlers raise on purpose."""


class TransientError(RestoreError):
    """Worth another try: the same call may succeed later."""


class PermanentError(RestoreError):
    """Retrying cannot help; the restore fails and cleans up."""


class AwsThrottled(TransientError):
    """AWS asked us to slow down (Throttling, RequestLimitExceeded)."""


class DeviceNameTaken(TransientError):
    """Another attach took the device name first; attach again with another."""


class VolumeAlreadyAttached(PermanentError):
    """EC2 refused the attach: the volume is attached already (to this helper after an
    earlier try went through, or elsewhere)."""


class InvalidRequest(PermanentError):
    """The execution input or event is not one we understand."""


class SnapshotNotFound(PermanentError):
    """The snapshot does not exist or is not visible to this account."""


class KeyNotUsable(PermanentError):
    """The snapshot's KMS key is disabled, pending deletion, missing or not usable by us."""


class HelperNotUsable(PermanentError):
    """The helper instance is missing, stopped, not Windows or not SSM-online."""


class NoFreeDevice(PermanentError):
    """The helper has no free xvdf-xvdz device name."""


class VolumeFailed(PermanentError):
    """A volume or snapshot of ours went into the error state."""


class WaitTimedOut(PermanentError):
    """A bounded wait ran out of attempts or time."""


class NotOurs(PermanentError):
    """Refused: the resource is not tagged as created by this workflow."""


class CommandFailed(PermanentError):
    """The SSM command did not succeed (failed, timed out, cancelled, undeliverable)."""


class UnsafeParameter(PermanentError):
    """A value for the disk tool does not match its allowedPattern; it is never sent."""


class DiskToolReportInvalid(PermanentError):
    """The disk tool's report is missing or does not follow docs/disk-tool.md."""


class DiskToolReportCut(DiskToolReportInvalid):
    """The disk tool's output filled the 24,000 characters of stdout SSM keeps: the report,
    its last line, is cut or missing."""


class DiskNotFound(PermanentError):
    """No disk, or more than one, on the helper has the volume's serial number."""


class RevertRefused(PermanentError):
    """The plan refused to revert: wrong disk, missing or unrevertable shadow copy."""


class VolumeNotReverted(PermanentError):
    """A volume the backup shadowed would be, or was, left unreverted: crash-consistent."""


class RevertFailed(PermanentError):
    """Windows reported an error while reverting; its text is in the message."""


class CheckFailed(PermanentError):
    """The file system scan or the operator's validation found the restored disk wanting."""


class RestoreFailed(PermanentError):
    """At least one snapshot of the request could not be verified."""


class SnapshotUnusable(PermanentError):
    """The snapshot is in the error state: there is nothing to restore."""


class CleanupPending(TransientError):
    """The failure cleanup is waiting for a detach to finish before it deletes the volume."""


class HelperImageNotUsable(PermanentError):
    """The helper image (HelperImage: an SSM parameter or an AMI ID) is missing, not Windows,
    or not of the instance type's architecture: no helper can be launched from it."""


class HelperLaunchDelayed(TransientError):
    """EC2 cannot launch a helper now (no capacity in any of our subnets, a vCPU quota, the
    fleet's MaxHelpers all running, throttling): the state machine tries again later."""


class HelperCapacityShort(TransientError):
    """EC2 has no capacity for the helper's instance type in this subnet's zone now."""


class HelperNeverOnline(PermanentError):
    """A launched helper did not reach SSM Online within HelperBootMinutes; it was
    terminated."""


class HelperLost(PermanentError):
    """Our helper was stopped or terminated by someone else while it held the volume."""


class HelperDraining(TransientError):
    """The helper whose line the restore waited in is past HelperMaxHours and drains: it
    finishes the turns it holds and takes no new work; the restore chooses another helper
    (the workflow's "Take a turn on the helper" catches it)."""


class WaitedTooLong(PermanentError):
    """The restore waited in line for a helper's turn longer than MaxWaitHours."""


class SlotTooFar(PermanentError):
    """A paced call's slot is further off than MaxWaitHours (pacing.py): the restore would
    wait that long for one EC2 call; the pacer or the pace is wrong."""


class BootTestFailed(PermanentError):
    """The boot test's throwaway instance went somewhere it should not (terminated by
    someone, a volume in error, a step refused): the test fails, with this reason, and
    everything it made is removed."""


class BootTestTimedOut(PermanentError):
    """The boot test ran past its bound (HelperBootMinutes per boot, plus the swap's time)."""
