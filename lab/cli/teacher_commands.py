"""`python -m lab teacher ...`: the teacher's sign-in seen from the server (whoever has the shell is trusted).

    python -m lab teacher unlock           clear the locks wrong guesses put on sign-in and on rejoining
    python -m lab teacher attempts --json  every try at the teacher password: when, from which identity, accepted or not

Neither command needs, reads or prints the teacher password: the record never held it.
"""

from __future__ import annotations

from lab.classroom import teacher
from lab.cli.output import print_json
from lab.store.runs import Store


def cmd_teacher(args) -> int:
    return {"unlock": cmd_unlock, "attempts": cmd_attempts}[args.teacher_command](args)


def cmd_unlock(args) -> int:
    was_locked_until = teacher.unlock(Store())
    if was_locked_until is None:
        print("Teacher sign-in was not locked; the count of wrong guesses starts again from now.")
    else:
        print(f"Teacher sign-in is unlocked (it was locked until {teacher.format_moment(was_locked_until)}).")
    print("Students whose rejoining was paused by wrong secrets can rejoin again.")
    return 0


def cmd_attempts(args) -> int:
    store = Store()
    attempts = teacher.attempts(store, limit=args.limit)
    if args.json:
        print_json(
            [{"at": row["at"].isoformat(), **{key: row[key] for key in ("person_id", "person_name", "ok", "outcome")}} for row in attempts]
        )
        return 0
    if not attempts:
        print("Nobody has tried the teacher password yet.")
        return 0
    lines = [("when", "who", "outcome"), *((teacher_time(row["at"]), _who(row), row["outcome"]) for row in attempts)]
    widths = [max(len(line[column]) for line in lines) for column in range(2)]
    for when, who, outcome in lines:
        print(f"{when:<{widths[0]}}  {who:<{widths[1]}}  {outcome}")
    locked = teacher.locked_until(store)
    if locked is not None:
        print(f"\nTeacher sign-in is locked until {teacher.format_moment(locked)}: `{teacher.UNLOCK_COMMAND}` clears it.")
    return 0


def teacher_time(moment) -> str:
    """A moment in the server's local time, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _who(row: dict) -> str:
    if row["person_name"] and row["person_id"]:
        return f"{row['person_name']} ({row['person_id']})"
    return row["person_name"] or "someone who had not joined"
