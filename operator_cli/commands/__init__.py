"""One module per command: each has `add(subparsers)` and `run(args, account, out)`."""
