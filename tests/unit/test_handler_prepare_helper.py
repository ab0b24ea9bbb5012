"""Handler prepare_helper: which Windows helper reverts the snapshot, refused unless usable.

moto has no DescribeInstanceInformation, so the SSM side is a botocore Stubber on that
one call; the instance itself lives in moto.
"""

from typing import Any

import pytest

from vss_restore import steps, tags
from vss_restore.aws.ec2 import Ec2
from vss_restore.aws.ssm import Ssm
from vss_restore.errors import HelperNotUsable
from vss_restore.handlers import prepare_helper
from vss_restore.logic.helper import Helper
from vss_restore.settings import Settings


@pytest.fixture
def agents(stubbed: Any) -> tuple[Ssm, Any]:
    """The SSM adapter over a stubbed client: queue one agent answer per check."""
    client, stubber = stubbed("ssm")
    return Ssm(client=client), stubber


def agent_answers(
    stubber: Any, instance_id: str, ping: str = "Online", platform: str = "Windows"
) -> None:
    stubber.add_response(
        "describe_instance_information",
        {
            "InstanceInformationList": [
                {"InstanceId": instance_id, "PingStatus": ping, "PlatformType": platform}
            ]
        },
        {"Filters": [{"Key": "InstanceIds", "Values": [instance_id]}]},
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
        settings,
        requested=event["request"]["helper_instance_id"],
        backed_up_instance=event["source"]["instance_id"],
        source_volume_id=event["source"].get("source_volume_id", ""),
    )


def test_the_helper_is_returned_with_its_zone_for_the_volume(
    world: Any, agents: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm, stubber = agents
    agent_answers(stubber, world.helper_id)
    monkeypatch.setattr(prepare_helper, "Ssm", lambda: ssm)

    result = prepare_helper.handler(world.event("prepare_helper"), lambda_context)

    assert result == {"instance_id": world.helper_id, "availability_zone": world.helper_zone}


def test_the_helper_named_in_the_request_comes_first(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    requested, stack = world.launch(), world.launch()
    event = world.event("prepare_helper")
    event["request"]["helper_instance_id"] = requested
    agent_answers(stubber, requested)

    helper = prepare(world, ssm, event, Settings(helper_instance_id=stack))

    assert helper.instance_id == requested


def test_without_a_request_the_stacks_helper_comes_before_the_backed_up_instance(
    world: Any, agents: Any
) -> None:
    ssm, stubber = agents
    stack = world.launch()
    agent_answers(stubber, stack)

    helper = prepare(world, ssm, world.event("prepare_helper"), Settings(helper_instance_id=stack))

    assert helper.instance_id == stack


def test_without_request_or_stack_helper_the_backed_up_instance_is_the_helper(
    world: Any, agents: Any
) -> None:
    ssm, stubber = agents
    agent_answers(stubber, world.helper_id)

    helper = prepare(world, ssm, world.event("prepare_helper"), Settings())

    assert helper == Helper(world.helper_id, world.helper_zone)


def test_without_an_instance_tag_the_instance_the_volume_is_attached_to_is_the_helper(
    world: Any, agents: Any
) -> None:
    ssm, stubber = agents
    source_volume = world.temporary_volume(volume_tags={"Name": "the backed-up data disk"})
    world.attach(source_volume, "xvdg")
    event = world.event("prepare_helper")
    event["source"].update(instance_id="", source_volume_id=source_volume)
    agent_answers(stubber, world.helper_id)

    helper = prepare(world, ssm, event, Settings())

    assert helper.instance_id == world.helper_id


def test_with_no_helper_named_anywhere_nothing_is_usable(world: Any, agents: Any) -> None:
    ssm, _ = agents
    event = world.event("prepare_helper")
    event["source"].update(instance_id="", source_volume_id="")

    with pytest.raises(HelperNotUsable, match="no helper instance: give helper_instance_id"):
        prepare(world, ssm, event, Settings())


def _refused(world: Any, ssm: Ssm, instance_id: str) -> str:
    event = world.event("prepare_helper")
    event["request"]["helper_instance_id"] = instance_id
    with pytest.raises(HelperNotUsable) as refusal:
        prepare(world, ssm, event, Settings())
    return str(refusal.value)


def test_a_helper_that_does_not_exist_is_refused(world: Any, agents: Any) -> None:
    ssm, stubber = agents
    agent_unknown(stubber, "i-0ffffffffffffffff")

    assert _refused(world, ssm, "i-0ffffffffffffffff") == "i-0ffffffffffffffff does not exist"


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
