"""Which waiting run starts next: round robin across students, not first come, first served.

The student whose latest run started longest ago goes first (a student with no run started
yet, before everyone), and each student's own runs start in the order they were queued. So a
student who queues two runs does not make the others wait for both: everyone else gets a turn
in between. With one user (a laptop, the command line) this is simply the oldest run first.

When a student's latest run started is remembered by the store's `turns` table (lab/store/turns.py),
not read from their runs: deleting your finished runs does not make you look like someone who
never had a turn. How many new names may join the queue is the class's limits' business
(lab/classroom/limits.py), checked when a run is queued.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab.store.records import WaitingRun


def fair_order(waiting: Sequence[WaitingRun]) -> list[str]:
    """The run ids of `waiting` (Store.waiting_runs: run_id, owner_id, created_at, owner_last_started) in starting order.

    `owner_last_started`: when the owner's latest run started (Store.waiting_runs reads it from the turns table), or None.
    """
    queues: dict[str, list[WaitingRun]] = {}
    for run in sorted(waiting, key=lambda run: run.created_at):
        queues.setdefault(run.owner_id, []).append(run)
    # Each owner's turn comes by (has a run started in this simulation?, when their latest run started).
    # None (never) reads as "", which sorts before any timestamp.
    turn = {owner: (0, runs[0].owner_last_started or "", runs[0].created_at) for owner, runs in queues.items()}
    order = []
    for starts in range(len(waiting)):
        owner = min((owner for owner in queues if queues[owner]), key=lambda owner: turn[owner])
        order.append(queues[owner].pop(0).run_id)
        turn[owner] = (1, f"{starts:08d}", "")  # just started: behind everyone still waiting for a first turn
    return order


def next_run(waiting: Sequence[WaitingRun]) -> str | None:
    """The run that starts next (what Store.claim_next_queued asks the workers' chooser)."""
    order = fair_order(waiting)
    return order[0] if order else None


def place_in_queue(run_id: str, waiting: Sequence[WaitingRun]) -> int | None:
    """1 when `run_id` starts next, 2 after that, ...; None when it is not waiting."""
    order = fair_order(waiting)
    return order.index(run_id) + 1 if run_id in order else None
