"""session-commands' MongoDB adapters: the session store (compare-and-set, group commit), the document layout, queries."""
