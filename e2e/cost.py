"""What a run costs and how long it takes: printed before anything else is done."""

# On-Demand prices assumed, us-east-1, as AWS's pricing pages gave them when the kit was
# written (not fetched: no network there). Check them for your Region before running:
# https://aws.amazon.com/ec2/pricing/on-demand/ and https://aws.amazon.com/ebs/pricing/
WINDOWS_T3_MEDIUM_PER_HOUR = 0.0600  # 2 vCPU, 4 GiB, Windows licence included
GP3_PER_GB_MONTH = 0.08
SNAPSHOT_PER_GB_MONTH = 0.05
HOURS_PER_MONTH = 730
INSTANCES = 2
RUN_HOURS = 1.0
# Two 30 GiB Windows roots, the 8 GiB data volume, and at most three 8 GiB volumes of
# snapshots at once (the workflow's temporary volume and the kit's readers); the C: restore
# adds a 30 GiB temporary volume for its part of the hour.
VOLUME_GIB = 30 * 2 + 8 + 3 * 8 + 30
SNAPSHOT_GIB = 2 * (30 + 8)  # the backup's two snapshots and their consistent snapshots

INSTANCE_COST = INSTANCES * WINDOWS_T3_MEDIUM_PER_HOUR * RUN_HOURS
VOLUME_COST = VOLUME_GIB * GP3_PER_GB_MONTH * RUN_HOURS / HOURS_PER_MONTH
SNAPSHOT_COST = SNAPSHOT_GIB * SNAPSHOT_PER_GB_MONTH * RUN_HOURS / HOURS_PER_MONTH
FORGOTTEN_DAY_COST = INSTANCES * WINDOWS_T3_MEDIUM_PER_HOUR * 24


def statement(region: str) -> str:
    total = INSTANCE_COST + VOLUME_COST + SNAPSHOT_COST
    return f"""\
vss-restore e2e kit: what it does in {region or "(no Region given)"}, what it costs
  time: about 60 minutes (deploy 5, Windows boot and set-up 15-20, backup 2, two restores
        10-30, reading the snapshots 5, teardown 10)
  makes: the vss-restore stack and a fixture stack: two Windows Server 2022 t3.medium
        instances (the source, the helper) in the default VPC, an 8 GiB data volume, the
        backup's snapshots, the workflow's temporary volumes and consistent snapshots, the
        kit's volumes of them; all deleted at the end, then checked gone
  cost, On-Demand prices assumed (us-east-1; CHECK them for your Region:
        https://aws.amazon.com/ec2/pricing/on-demand/, https://aws.amazon.com/ebs/pricing/):
    instances  {INSTANCES} x ${WINDOWS_T3_MEDIUM_PER_HOUR:.4f}/h (Windows t3.medium) x {RUN_HOURS:g} h = ${INSTANCE_COST:.2f}
    volumes    about {VOLUME_GIB} GiB gp3 at ${GP3_PER_GB_MONTH}/GB-month for {RUN_HOURS:g} h = ${VOLUME_COST:.3f}
    snapshots  about {SNAPSHOT_GIB} GiB at ${SNAPSHOT_PER_GB_MONTH}/GB-month for {RUN_HOURS:g} h = ${SNAPSHOT_COST:.3f}
    Step Functions, Lambda, DynamoDB, EventBridge, SSM, CloudWatch: well under $0.01
    total      about ${total:.2f}; if the teardown fails and the instances stay a day: ${FORGOTTEN_DAY_COST:.2f}
  left on purpose: sam's artifact bucket (stack aws-sam-cli-managed-default), which every
        sam deploy in the account shares
"""  # noqa: E501
