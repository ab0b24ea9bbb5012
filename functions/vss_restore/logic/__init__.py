"""The restore's decisions, as plain functions that know nothing of Lambda or AWS."""
