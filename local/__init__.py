"""`make local-invoke`: every function through `sam local invoke`, against a seeded moto server.

Not deployed. `python -m local.invoke --help` says how to run it; docs/development.md,
"sam local invoke", says what it does.
"""
