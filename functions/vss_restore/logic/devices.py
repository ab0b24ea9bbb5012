"""Picking a free Windows device name for the attach."""

from collections.abc import Iterable
from string import ascii_lowercase

from vss_restore.errors import NoFreeDevice

# AWS PV / Nitro Windows instances take extra EBS volumes at xvdf to xvdz.
WINDOWS_DEVICES = tuple(f"xvd{letter}" for letter in ascii_lowercase[5:])


def _short(device: str) -> str:
    return device.removeprefix("/dev/")


def free_device(used: Iterable[str], avoid: Iterable[str] = ()) -> str:
    """The first Windows device name that is neither in use nor to be avoided."""
    taken = {_short(name) for name in (*used, *avoid)}
    for device in WINDOWS_DEVICES:
        if device not in taken:
            return device
    raise NoFreeDevice(f"all of {WINDOWS_DEVICES[0]}-{WINDOWS_DEVICES[-1]} are in use")
