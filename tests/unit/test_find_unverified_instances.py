"""Handler find_unverified_instances: the hourly count, its metric and its alert on change."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.unit.conftest import AlertTopic, World
from vss_restore.handlers import find_unverified_instances
from vss_restore.observability import UNVERIFIED_INSTANCES
from vss_restore.settings import Settings


def _vss_instance(world: World, *, days_ago: float) -> str:
    defaults = Settings()
    instance_id = world.launch(instance_tags={defaults.vss_tag_key: defaults.vss_tag_value})
    launched = datetime.now(UTC) - timedelta(days=days_ago)
    world.backend.get_instance(instance_id).launch_time = launched
    return instance_id


def test_an_instance_never_backed_up_is_counted_and_announced_once(
    world: World,
    alert_topic: AlertTopic,
    sample: Callable[[str], dict[str, Any]],
    lambda_context: Any,
    emitted_metrics: Callable[[], list[str]],
) -> None:
    old = _vss_instance(world, days_ago=30)
    new = _vss_instance(world, days_ago=0.5)

    first = find_unverified_instances.handler(sample("find_unverified_instances"), lambda_context)
    second = find_unverified_instances.handler(sample("find_unverified_instances"), lambda_context)

    assert first["unverified_instances"] == [{"instance_id": old, "why": "never backed up"}]
    assert first["launched_recently"] == [new]
    assert (first["alerted"], second["alerted"]) == (True, False)
    [(subject, message)] = alert_topic.published()
    assert subject == "vss-restore: 1 instance(s) without a verified backup in 26 h"
    assert f"{old}: never backed up" in message
    assert emitted_metrics().count(UNVERIFIED_INSTANCES) == 2
