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


def test_the_fleet_mode_is_refused_as_not_built_yet() -> None:
    with pytest.raises(InvalidRequest, match="HELPER_MODE 'fleet' is not one of named"):
        Settings.from_environment({"HELPER_MODE": "fleet"})


@pytest.mark.parametrize("value", ["yes", "1", ""])
def test_allow_source_as_helper_is_strictly_true_or_false(value: str) -> None:
    with pytest.raises(InvalidRequest, match="ALLOW_SOURCE_AS_HELPER"):
        Settings.from_environment({"ALLOW_SOURCE_AS_HELPER": value})
