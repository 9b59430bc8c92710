"""The training methods, each a config dataclass and a per-batch loss on the shared runtime (trainables/runtime.py)."""
