"""The pure part of session-commands: the decider (decide / evolve), its state and policies. No I/O."""
