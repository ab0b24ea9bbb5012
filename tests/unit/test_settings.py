"""The handlers' configuration, read once from the environment (settings.py)."""

import pytest

from vss_restore.errors import InvalidRequest
from vss_restore.settings import Settings


def test_without_environment_the_defaults_apply() -> None:
    settings = Settings.from_environment({})

    assert settings == Settings(
        vss_tag_key="ConsistentSnapshot",
        vss_tag_value="WindowsVSS",
        helper_mode="named",
        helper_instance_ids=(),
        allow_source_as_helper=False,
        disk_tool_document="vss-restore-DiskTool",
        volume_type="gp3",
        check_after_revert=True,
        validation_script="",
    )


def test_every_setting_can_be_overridden_from_the_environment() -> None:
    settings = Settings.from_environment(
        {
            "VSS_TAG_KEY": "Backup",
            "VSS_TAG_VALUE": "NightlyVSS",
            "HELPER_MODE": "named",
            "HELPER_INSTANCE_IDS": "i-0abc1234def567890,i-0def5678abc901234",
            "ALLOW_SOURCE_AS_HELPER": "true",
            "DISK_TOOL_DOCUMENT": "prod-vss-restore-DiskTool-1A2B3C",
            "VOLUME_TYPE": "gp2",
            "CHECK_AFTER_REVERT": "false",
            "VALIDATION_SCRIPT": "C:\\vss-restore\\validate.ps1",
        }
    )

    assert settings == Settings(
        vss_tag_key="Backup",
        vss_tag_value="NightlyVSS",
        helper_instance_ids=("i-0abc1234def567890", "i-0def5678abc901234"),
        allow_source_as_helper=True,
        disk_tool_document="prod-vss-restore-DiskTool-1A2B3C",
        volume_type="gp2",
        check_after_revert=False,
        validation_script="C:\\vss-restore\\validate.ps1",
    )


def test_the_process_environment_is_read_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VSS_TAG_KEY", "FromTheProcess")

    assert Settings.from_environment().vss_tag_key == "FromTheProcess"


def test_an_empty_helper_list_means_no_helper_configured() -> None:
    assert Settings.from_environment({"HELPER_INSTANCE_IDS": ""}).helper_instance_ids == ()


def test_the_helper_list_is_read_with_spaces_and_duplicates_dropped_in_order() -> None:
    settings = Settings.from_environment(
        {"HELPER_INSTANCE_IDS": "i-0def5678abc901234 , i-0abc1234def567890,i-0def5678abc901234,"}
    )

    assert settings.helper_instance_ids == ("i-0def5678abc901234", "i-0abc1234def567890")


@pytest.mark.parametrize("value", ["helper", "i-XYZ", "vol-0123456789abcdef0"])
def test_a_malformed_helper_in_the_list_is_refused_with_its_value(value: str) -> None:
    with pytest.raises(InvalidRequest, match=f"HELPER_INSTANCE_IDS: {value!r} is not an instance"):
        Settings.from_environment({"HELPER_INSTANCE_IDS": f"i-0abc1234def567890,{value}"})


def test_more_helpers_than_a_named_list_holds_are_refused() -> None:
    many = ",".join(f"i-{n:017x}" for n in range(21))

    with pytest.raises(InvalidRequest, match="names 21 helpers, more than 20"):
        Settings.from_environment({"HELPER_INSTANCE_IDS": many})


FLEET = {
    "HELPER_MODE": "fleet",
    # Spaces and a repeat: read as the two subnets, in order.
    "HELPER_SUBNET_IDS": "subnet-0aaa1111bbb22233a, subnet-0aaa1111bbb22233b,"
    "subnet-0aaa1111bbb22233a",
    "HELPER_SECURITY_GROUP": "sg-0aaa1111bbb222333",
    "HELPER_INSTANCE_PROFILE": "arn:aws:iam::123456789012:instance-profile/vss-restore-Helper",
}


def test_an_unknown_helper_mode_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="HELPER_MODE 'pool' is not one of named, fleet"):
        Settings.from_environment({"HELPER_MODE": "pool"})


def test_the_fleet_reads_its_subnets_in_order_each_once_and_its_defaults() -> None:
    settings = Settings.from_environment(FLEET)

    assert settings.helper_subnet_ids == ("subnet-0aaa1111bbb22233a", "subnet-0aaa1111bbb22233b")
    assert settings.helper_image.startswith("/aws/service/ami-windows-latest/")
    assert (settings.max_helpers, settings.helper_idle_minutes) == (5, 10)


@pytest.mark.parametrize(
    "missing", ["HELPER_SUBNET_IDS", "HELPER_SECURITY_GROUP", "HELPER_INSTANCE_PROFILE"]
)
def test_a_fleet_with_nowhere_to_launch_is_refused(missing: str) -> None:
    with pytest.raises(InvalidRequest, match=f"HELPER_MODE fleet needs {missing}"):
        Settings.from_environment({**FLEET, missing: ""})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HELPER_SUBNET_IDS", "subnet-0aaa1111bbb22233a,vpc-0aaa1111bbb222333"),
        ("HELPER_SECURITY_GROUP", "default"),
        ("HELPER_INSTANCE_PROFILE", "arn:aws:iam::123456789012:role/Admin"),
        ("HELPER_IMAGE", "ami-0abc;rm"),
        ("HELPER_INSTANCE_TYPE", "m6i large"),
        ("MAX_HELPERS", "0"),
        ("HELPER_BOOT_MINUTES", "600"),
    ],
)
def test_each_fleet_setting_is_validated(name: str, value: str) -> None:
    with pytest.raises(InvalidRequest, match=name):
        Settings.from_environment({**FLEET, name: value})


@pytest.mark.parametrize("value", ["yes", "1", ""])
def test_allow_source_as_helper_is_strictly_true_or_false(value: str) -> None:
    with pytest.raises(InvalidRequest, match="ALLOW_SOURCE_AS_HELPER"):
        Settings.from_environment({"ALLOW_SOURCE_AS_HELPER": value})
