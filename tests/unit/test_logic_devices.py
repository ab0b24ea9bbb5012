"""Picking a free Windows device name for the attach (logic/devices.py)."""

import pytest

from vss_restore.errors import NoFreeDevice
from vss_restore.logic.devices import WINDOWS_DEVICES, free_device


def test_the_first_extra_device_name_is_xvdf() -> None:
    assert free_device(["/dev/sda1"]) == "xvdf"


def test_names_in_use_are_skipped_in_both_their_dev_and_short_forms() -> None:
    assert free_device(["/dev/sda1", "/dev/xvdf", "xvdg"]) == "xvdh"


def test_names_to_avoid_are_skipped_like_names_in_use() -> None:
    assert free_device(["/dev/xvdf"], avoid=["/dev/xvdg", "xvdh"]) == "xvdi"


def test_the_gaps_are_filled_first() -> None:
    assert free_device(["xvdf", "xvdh"]) == "xvdg"


def test_windows_extra_volumes_get_xvdf_to_xvdz() -> None:
    assert (WINDOWS_DEVICES[0], WINDOWS_DEVICES[-1], len(WINDOWS_DEVICES)) == ("xvdf", "xvdz", 21)


def test_the_last_free_name_is_found() -> None:
    assert free_device([f"/dev/{name}" for name in WINDOWS_DEVICES[:-1]]) == "xvdz"


def test_no_free_device_when_all_21_names_are_taken() -> None:
    used = [f"/dev/{name}" if i % 2 else name for i, name in enumerate(WINDOWS_DEVICES)]

    with pytest.raises(NoFreeDevice, match="all of xvdf-xvdz are in use"):
        free_device(["/dev/sda1", *used])
