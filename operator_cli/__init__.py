"""vss-restore's operator CLI: start a restore, see where it stands, report the verdicts."""
