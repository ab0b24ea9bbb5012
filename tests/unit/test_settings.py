"""The handlers' configuration, read once from the environment (settings.py)."""

import pytest

from vss_restore.errors import InvalidRequest
from vss_restore.settings import Settings


def test_without_environment_the_defaults_apply() -> None:
    settings = Settings.from_environment({})

    assert settings == Settings(
        vss_tag_key="ConsistentSnapshot",
        vss_tag_value="WindowsVSS",
        helper_instance_id="",
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
            "HELPER_INSTANCE_ID": "i-0abc1234def567890",
            "DISK_TOOL_DOCUMENT": "prod-vss-restore-DiskTool-1A2B3C",
            "VOLUME_TYPE": "gp2",
            "CHECK_AFTER_REVERT": "false",
            "VALIDATION_SCRIPT": "C:\\vss-restore\\validate.ps1",
        }
    )

    assert settings == Settings(
        vss_tag_key="Backup",
        vss_tag_value="NightlyVSS",
        helper_instance_id="i-0abc1234def567890",
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


def test_an_empty_helper_instance_id_means_no_stack_helper() -> None:
    assert Settings.from_environment({"HELPER_INSTANCE_ID": ""}).helper_instance_id == ""


@pytest.mark.parametrize(
    "value", ["helper", "i-XYZ", "vol-0123456789abcdef0", " i-0abc1234def567890"]
)
def test_a_malformed_helper_instance_id_is_refused_with_its_value(value: str) -> None:
    with pytest.raises(InvalidRequest, match=f"HELPER_INSTANCE_ID {value!r} is not an instance ID"):
        Settings.from_environment({"HELPER_INSTANCE_ID": value})
