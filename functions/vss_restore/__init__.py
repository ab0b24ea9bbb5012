"""vss-restore: turn crash-consistent VSS EBS snapshots into verified consistent ones."""
