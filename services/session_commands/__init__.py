"""session-commands: the single writer of session state (decider, MongoDB, session events)."""
