"""The acceptance kit (#14): proves on a real account that a consistent snapshot holds the
backup's shadow-copy-time files; its steps also run against the simulator in make test."""
