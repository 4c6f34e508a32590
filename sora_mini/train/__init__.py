"""Training: the shared loop, atomic checkpoints, and get-or-train artifacts by scale."""
