"""The delivery client: one signed POST per attempt, every outcome a value."""
