"""`vss-restore recover` and an encrypted backup whose key the operator cannot use."""

import boto3

from simulator import Simulation, load
from tests.cli.test_recover import consistent_of, ec2, recover, recovered_volumes, two_backups


def test_a_key_the_operator_cannot_use_stops_before_anything_is_created() -> None:
    scenario = two_backups()
    scenario["instances"]["web1"]["volumes"][1]["encryption"] = "customer-key"
    scenario["steps"] = scenario["steps"][:1]
    with Simulation(load(scenario)) as simulation:
        assert simulation.run().ok
        consistent = consistent_of(simulation, "night1.D")
        snapshot = ec2(simulation).describe_snapshots(SnapshotIds=[consistent])["Snapshots"][0]
        boto3.client("kms", region_name="us-east-1").disable_key(
            KeyId=snapshot["KmsKeyId"].rsplit("/", 1)[-1]
        )

        said = recover(
            simulation,
            "--instance",
            simulation.aliases.instances["web1"],
            "--drive",
            "D",
            "--volumes-only",
            "--yes",
        )

        assert said.code == 2
        assert f"encrypted with {snapshot['KmsKeyId']}, which is Disabled" in said.err
        assert recovered_volumes(simulation) == []
