"""The handlers' configuration, read once from the environment into one typed object."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from vss_restore.errors import InvalidRequest

INSTANCE_ID_PATTERN = re.compile(r"^i-[0-9a-f]{8,17}$")


@dataclass(frozen=True)
class Settings:
    vss_tag_key: str = "ConsistentSnapshot"
    vss_tag_value: str = "WindowsVSS"
    helper_instance_id: str = ""
    disk_tool_document: str = "vss-restore-DiskTool"
    volume_type: str = "gp3"
    check_after_revert: bool = True
    validation_script: str = ""
    alert_topic_arn: str = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        settings = cls(
            vss_tag_key=env.get("VSS_TAG_KEY", cls.vss_tag_key),
            vss_tag_value=env.get("VSS_TAG_VALUE", cls.vss_tag_value),
            helper_instance_id=env.get("HELPER_INSTANCE_ID", cls.helper_instance_id),
            disk_tool_document=env.get("DISK_TOOL_DOCUMENT", cls.disk_tool_document),
            volume_type=env.get("VOLUME_TYPE", cls.volume_type),
            check_after_revert=env.get("CHECK_AFTER_REVERT", "true").lower() != "false",
            validation_script=env.get("VALIDATION_SCRIPT", cls.validation_script),
            alert_topic_arn=env.get("ALERT_TOPIC_ARN", cls.alert_topic_arn),
        )
        if settings.helper_instance_id and not INSTANCE_ID_PATTERN.match(
            settings.helper_instance_id
        ):
            raise InvalidRequest(
                f"HELPER_INSTANCE_ID {settings.helper_instance_id!r} is not an instance ID"
            )
        return settings
