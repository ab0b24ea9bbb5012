"""Handler prepare_helper: which Windows helper reverts the snapshot, refused unless usable.

moto has no DescribeInstanceInformation, so the SSM side is a botocore Stubber on that
one call; the instance itself lives in moto.
"""

from typing import Any

import pytest

from vss_restore import clock, steps, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ledger import Ledger
from vss_restore.aws.ssm import Ssm
from vss_restore.errors import HelperNotUsable
from vss_restore.handlers import prepare_helper
from vss_restore.logic.helper import Helper
from vss_restore.settings import Settings

from .conftest import LEDGER_TABLE

VSS = {Settings().vss_tag_key: Settings().vss_tag_value}


@pytest.fixture
def agents(stubbed: Any) -> tuple[Ssm, Any]:
    """The SSM adapter over a stubbed client: queue one agent answer per check."""
    client, stubber = stubbed("ssm")
    return Ssm(client=client), stubber


def agent_answers(
    stubber: Any, instance_id: str, ping: str = "Online", platform: str = "Windows"
) -> None:
    agents_answer(stubber, [instance_id], ping=ping, platform=platform)


def agents_answer(
    stubber: Any, instance_ids: list[str], ping: str = "Online", platform: str = "Windows"
) -> None:
    stubber.add_response(
        "describe_instance_information",
        {
            "InstanceInformationList": [
                {"InstanceId": i, "PingStatus": ping, "PlatformType": platform}
                for i in instance_ids
            ]
        },
        {"Filters": [{"Key": "InstanceIds", "Values": instance_ids}]},
    )


def agent_unknown(stubber: Any, instance_id: str) -> None:
    stubber.add_response(
        "describe_instance_information",
        {"InstanceInformationList": []},
        {"Filters": [{"Key": "InstanceIds", "Values": [instance_id]}]},
    )


def prepare(world: Any, ssm: Ssm, event: dict[str, Any], settings: Settings) -> Helper:
    """The step as the handler runs it, with the SSM adapter handed in."""
    return steps.prepare_helper(
        Ec2(client=world.ec2),
        ssm,
        Ledger(LEDGER_TABLE),
        settings,
        snapshot_id=event["source"]["snapshot_id"],
        requested=event["request"]["helper_instance_id"],
        backed_up_instance=event["source"]["instance_id"],
        source_volume_id=event["source"].get("source_volume_id", ""),
    )


def test_the_stacks_helper_is_returned_with_its_zone_for_the_volume(
    world: Any, agents: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm, stubber = agents
    agent_answers(stubber, world.helper_id)
    monkeypatch.setattr(prepare_helper, "Ssm", lambda: ssm)
    monkeypatch.setenv("HELPER_INSTANCE_IDS", world.helper_id)

    result = prepare_helper.handler(world.event("prepare_helper"), lambda_context)

    # A named helper is running and Online already: no boot to wait for.
    assert result == {
        "instance_id": world.helper_id,
        "availability_zone": world.helper_zone,
        "ready": True,
    }


def test_the_helper_named_in_the_request_comes_first(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    requested, stack = world.launch(), world.launch()
    event = world.event("prepare_helper")
    event["request"]["helper_instance_id"] = requested
    agent_answers(stubber, requested)

    helper = prepare(world, ssm, event, Settings(helper_instance_ids=(stack,)))

    assert helper.instance_id == requested


def test_by_default_no_helper_is_configured_and_nothing_is_chosen(world: Any, agents: Any) -> None:
    ssm, _ = agents

    with pytest.raises(HelperNotUsable, match=r"^no helper configured: set HelperInstanceIds"):
        prepare(world, ssm, world.event("prepare_helper"), Settings())


def test_the_backed_up_instance_as_the_stacks_helper_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    web1 = world.launch(instance_tags={tags.HELPER: "true", **VSS})
    event = world.event("prepare_helper")
    event["source"]["instance_id"] = web1
    agent_answers(stubber, web1)

    with pytest.raises(HelperNotUsable) as refusal:
        prepare(world, ssm, event, Settings(helper_instance_ids=(web1,)))

    assert str(refusal.value).startswith(
        f"helper {web1} is the backed-up instance itself (set AllowSourceAsHelper=true"
    )


def test_the_instance_the_source_volume_is_attached_to_is_refused_too(
    world: Any, agents: Any
) -> None:
    ssm, stubber = agents
    source_volume = world.temporary_volume(volume_tags={"Name": "the backed-up data disk"})
    world.attach(source_volume, "xvdg")  # to world.helper_id
    event = world.event("prepare_helper")
    event["source"].update(instance_id="", source_volume_id=source_volume)
    agent_answers(stubber, world.helper_id)

    with pytest.raises(HelperNotUsable, match="is the instance the snapshot's volume is attached"):
        prepare(world, ssm, event, Settings(helper_instance_ids=(world.helper_id,)))


def test_allowing_the_source_restores_on_the_backed_up_instance_when_no_helper_is_named(
    world: Any, agents: Any
) -> None:
    ssm, stubber = agents
    web1 = world.launch(instance_tags={tags.HELPER: "true", **VSS})
    event = world.event("prepare_helper")
    event["source"]["instance_id"] = web1
    agent_answers(stubber, web1)

    helper = prepare(world, ssm, event, Settings(allow_source_as_helper=True))

    assert helper == Helper(web1, world.helper_zone)


def test_allowing_the_source_finds_it_by_its_volume_without_an_instance_tag(
    world: Any, agents: Any
) -> None:
    ssm, stubber = agents
    source_volume = world.temporary_volume(volume_tags={"Name": "the backed-up data disk"})
    world.attach(source_volume, "xvdg")
    event = world.event("prepare_helper")
    event["source"].update(instance_id="", source_volume_id=source_volume)
    agent_answers(stubber, world.helper_id)

    helper = prepare(world, ssm, event, Settings(allow_source_as_helper=True))

    assert helper.instance_id == world.helper_id


def test_a_backed_up_server_is_refused_as_the_helper_of_another(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    other = world.launch(instance_tags={tags.HELPER: "true", **VSS})
    agent_answers(stubber, other)

    with pytest.raises(HelperNotUsable, match=f"helper {other} is backed up itself"):
        prepare(world, ssm, world.event("prepare_helper"), Settings(helper_instance_ids=(other,)))


def test_of_several_helpers_the_one_with_the_fewest_restores_is_chosen(
    world: Any, agents: Any
) -> None:
    ssm, stubber = agents
    busy, idle = world.helper_id, world.launch()
    agents_answer(stubber, [busy, idle])
    ledger, now = Ledger(LEDGER_TABLE), clock.now().timestamp()
    ledger.turns(busy, int(now))  # the helper's item, as its first turn makes it
    ledger.queue_for_turn(busy, "another execution|snap-1", "token", int(now * 1000), 2**31)

    helper = prepare(
        world, ssm, world.event("prepare_helper"), Settings(helper_instance_ids=(busy, idle))
    )

    assert helper.instance_id == idle


def test_of_several_helpers_an_unusable_one_is_passed_over(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    stopped, running = world.launch(), world.helper_id
    world.ec2.stop_instances(InstanceIds=[stopped])
    agents_answer(stubber, [stopped, running])

    helper = prepare(
        world, ssm, world.event("prepare_helper"), Settings(helper_instance_ids=(stopped, running))
    )

    assert helper.instance_id == running


def _refused(world: Any, ssm: Ssm, instance_id: str) -> str:
    event = world.event("prepare_helper")
    event["request"]["helper_instance_id"] = instance_id
    with pytest.raises(HelperNotUsable) as refusal:
        prepare(world, ssm, event, Settings())
    return str(refusal.value)


def test_a_helper_that_does_not_exist_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    agent_unknown(stubber, "i-0ffffffffffffffff")

    assert _refused(world, ssm, "i-0ffffffffffffffff") == (
        "helper i-0ffffffffffffffff does not exist"
    )


def test_an_instance_not_tagged_as_helper_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    untagged = world.launch(instance_tags={"Name": "file server"})
    agent_answers(stubber, untagged)

    assert f"is not tagged {tags.HELPER}=true" in _refused(world, ssm, untagged)


def test_a_stopped_helper_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    world.ec2.stop_instances(InstanceIds=[world.helper_id])
    agent_answers(stubber, world.helper_id, ping="ConnectionLost")

    assert "is stopped, not running" in _refused(world, ssm, world.helper_id)


def test_a_helper_that_is_not_windows_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    linux = world.launch(windows=False)
    agent_answers(stubber, linux)

    assert "is not a Windows instance" in _refused(world, ssm, linux)


def test_a_helper_not_registered_with_ssm_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    agent_unknown(stubber, world.helper_id)

    assert "is not registered with SSM" in _refused(world, ssm, world.helper_id)


def test_a_helper_whose_agent_lost_its_connection_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    agent_answers(stubber, world.helper_id, ping="ConnectionLost")

    assert "has SSM ping status ConnectionLost" in _refused(world, ssm, world.helper_id)


def test_a_helper_whose_agent_reports_linux_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    agent_answers(stubber, world.helper_id, platform="Linux")

    assert "reports SSM platform Linux" in _refused(world, ssm, world.helper_id)


def test_every_problem_of_a_helper_is_named_at_once(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    linux = world.launch(windows=False, instance_tags={})
    agent_unknown(stubber, linux)

    message = _refused(world, ssm, linux)

    assert message.startswith(f"helper {linux} ")
    for problem in ("is not tagged", "is not a Windows instance", "is not registered with SSM"):
        assert problem in message
