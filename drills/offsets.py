"""How a group's committed offset on a standby is judged against the primary's: one rule for
the standby parity probe and the cutover rehearsal, so they never disagree on the same state."""


def synced_offset_problem(primary: int, standby: int | None, *, max_lag: int) -> str:
    """'' when a consumer moved to the standby would resume acceptably, else why not."""
    if standby is None:
        return "no committed offset on the standby (consumers would reset)"
    if standby > primary:
        return f"{standby - primary} records ahead of the primary: they would be skipped"
    if primary - standby > max_lag:
        return f"{primary - standby} records behind the primary: more than {max_lag} would be replayed"
    return ""
