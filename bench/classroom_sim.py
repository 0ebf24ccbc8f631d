"""One way of the classroom benchmark, in a process of its own: a class on the real app and the real queue.

bench/classroom_load.py runs `python -m bench.classroom_sim way SPEC RESULT` once per way and writes
the tables. This process plays the app's server; the workers that train are processes it starts.

How the students are simulated
- Each student is a thread driving a `streamlit.testing.v1.AppTest` session of the real app
  (streamlit_app.py, classroom mode on: a teacher password is set), so every page interaction runs
  the real page scripts in this process, against this way's results store and the real CIFAR-10:
  arriving (the first run: the name prompt), giving a name (the app makes the student's private
  identity), Explore (a reshuffle, then two tabs), Compare (the leaderboard, then every run) and,
  once the student's first result is in, Predict with that model on an uploaded photo.
- Start is `lab.jobs.queue.ask_for_run(config, owner=<the student>, ...)`, the call the Train page's
  button makes; the Train page itself is not driven (it is being rebuilt for classroom mode).
- AppTest swaps a process-wide runtime in and out on every run, so two sessions cannot run a script
  at the same moment: page runs take turns through one lock, as the script runs of one Streamlit
  server take turns on one interpreter lock. An interaction's latency is its wait for a turn plus its run.
- A student waiting for a result looks at the store every 2 s (as the Train page's progress does),
  without a page run. Students think 1-4 s between interactions.

The ways
- fair: the lab's queue. `ask_for_run(classroom=True)`: each student's Start trains their own run; the
  students who share settings choose a classmate's run instead (`reuse=True`, the Train page's "use a
  classmate's run" choice), so those settings are trained once and followed by the others; the class's
  limits apply; lab's own workers (lab.jobs.launcher: fair order, warm for LAB_WORKER_IDLE_SECONDS) train.
- fcfs: first come, first served, without dedupe. `ask_for_run(classroom=False)` queues every request,
  and lab's own worker started with `--order oldest` trains the oldest queued run first. It starts
  before the class and registers itself in the worker slot; and in this way's server process the
  launcher's `start_worker`, which `ask_for_run` and the pages reach through `ensure_workers`, is
  replaced by one that starts nothing (and counts the tries), so no fair-order worker can ever take
  this way's runs. It stays warm like the fair way's worker, so the two ways differ in the queue only.
- fcfs-cold: as fcfs, but every run trains in a new process, which pays TensorFlow's import and the
  data loading again: the start cost a warm worker saves.

Each way runs on a store of its own (a fresh LAB_HOME), and every run must have been trained by one
of that way's own workers: a run trained by any other process is an error of the way, and
bench/classroom_load.py judges no target while a way has errors.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import psutil

import lab  # noqa: F401 - before TensorFlow loads: lab picks its CPU kernels (lab/__init__.py)
from bench.harness import ROOT

APP = str(ROOT / "streamlit_app.py")
WAYS = ("fair", "fcfs", "fcfs-cold")
PAGE_TIMEOUT_S = 180  # one page run may wait behind a busy CPU, not forever
RESULT_POLL_S = 2.0
SAMPLE_S = 0.5  # how often the processes' memory is read
THINK_S = (1.0, 4.0)  # a student reads a page for this long before the next click
IDLE_POLL_S = 0.5  # how often an idle first-come-first-served worker looks at the queue


# ---------------------------------------------------------------- the class


def plan_class(students: int, identical: int, eager: int, arrive_over: float) -> list[dict]:
    """Who arrives when, in arrival order: `identical` students spread through the class choose the very
    same settings; the first `eager` of the others queue a second run at once (keen students come early)."""
    identical = min(identical, students)
    same = {round(i * students / identical) for i in range(identical)} if identical else set()
    keen = set([i for i in range(students) if i not in same][:eager])
    return [{"number": i + 1, "arrives_s": i * arrive_over / students, "identical": i in same, "eager": i in keen} for i in range(students)]


def student_configs(student: dict, overrides: dict) -> list:
    """The runs a student asks for: quick-demo, seed 0 for the identical ones, their own seed for the others."""
    from lab.config import config_for_preset

    first = config_for_preset("quick-demo", **overrides, seed=0 if student["identical"] else student["number"])
    return [first, config_for_preset("quick-demo", **overrides, seed=1000 + student["number"])] if student["eager"] else [first]


def photo(seed: int) -> bytes:
    """A phone-sized JPEG to upload on Predict: a colour gradient with noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, 640)[None, :, None] * rng.uniform(50, 200, size=3)
    pixels = np.clip(ramp + rng.normal(0, 25, size=(480, 640, 3)) + rng.uniform(0, 55, size=3), 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


class Server:
    """The page runs of every session, one at a time (AppTest is not thread safe), each timed."""

    def __init__(self):
        self.turn = threading.Lock()
        self.timings: list[dict] = []
        self.errors: list[str] = []

    def page(self, who: int, what: str, action):
        asked = time.perf_counter()
        with self.turn:
            began = time.perf_counter()
            try:
                at = action()
            except Exception as error:  # noqa: BLE001 - a failed interaction is a figure, not the end of the class
                self.errors.append(f"student {who}, {what}: {type(error).__name__}: {str(error).strip()[:200]}")
                return None
            finally:
                ended = time.perf_counter()
        self.timings.append({"what": what, "wait_s": began - asked, "run_s": ended - began})
        self.errors.extend(f"student {who}, {what}: {str(exception.value)[:200]}" for exception in at.exception)
        return at


class Classroom:
    """What every student thread shares: the way, the store, the clock, the server, the results."""

    def __init__(self, spec: dict, store):
        self.spec, self.store = spec, store
        self.server = Server()
        self.started = time.monotonic()
        self.started_utc = datetime.now(UTC)
        self.deadline = self.started + spec["minutes"] * 60
        self.results: dict[int, dict] = {}
        self.owners: dict[str, int] = {}  # person id -> student number

    def seconds(self, timestamp: str | None) -> float | None:
        """A store timestamp (ISO 8601 UTC) as seconds since the class began."""
        return None if not timestamp else (datetime.fromisoformat(timestamp) - self.started_utc).total_seconds()

    def now_s(self) -> float:
        return time.monotonic() - self.started

    def log(self, text: str) -> None:
        print(f"[{self.spec['way']} {self.now_s():6.1f} s] {text}", file=sys.stderr, flush=True)


def attend(room: Classroom, student: dict) -> None:
    """One student's visit, from arriving to predicting with their first result."""
    try:
        _attend(room, student)
    except Exception:  # noqa: BLE001 - counted, and the other students carry on
        room.server.errors.append(f"student {student['number']}: {traceback.format_exc(limit=3).strip()[-400:]}")


def _attend(room: Classroom, student: dict) -> None:
    from streamlit.testing.v1 import AppTest

    from lab.classroom import identities
    from lab.jobs import queue
    from lab.store.owners import Person

    number, server = student["number"], room.server
    rng = random.Random(number)
    result = room.results[number] = {**student, "outcomes": []}
    time.sleep(max(0.0, room.started + student["arrives_s"] - time.monotonic()))

    def think() -> None:
        time.sleep(rng.uniform(*THINK_S))

    def step(what: str, action) -> None:
        think()
        server.page(number, what, action)

    at = AppTest.from_file(APP, default_timeout=PAGE_TIMEOUT_S)
    server.page(number, "arrive", at.run)
    name = f"Student {number:02d}"
    if any(widget.key == "classroom_your_name" for widget in at.text_input):
        step("give a name", lambda: at.text_input(key="classroom_your_name").set_value(name).run())
    person_id = at.session_state.to_dict().get("classroom_person_id")
    if person_id is None:  # the name prompt is missing or failed: an identity as the app would make it
        person_id = identities.join(room.store, name).person.id
        server.errors.append(f"student {number}: joined without the app's name prompt")
    person = Person(person_id, name)
    room.owners[person.id] = number

    step("Explore: reshuffle", lambda: at.button(key="explore_reshuffle").click().run())
    for tab in ("Class balance", "Average images"):
        step(f"Explore: {tab.lower()}", lambda tab=tab: _set_state(at, explore_tab=tab).run())

    think()
    result["start_s"] = room.now_s()
    result["start_utc"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    for index, config in enumerate(student_configs(student, room.spec["overrides"])):
        asked = time.perf_counter()
        share = student["identical"] and index == 0  # the shared settings: this student chooses a classmate's run
        try:
            request = queue.ask_for_run(
                config, owner=person, store=room.store, data_dir=room.spec["data_dir"], classroom=room.spec["way"] == "fair", reuse=share
            )
        except Exception as error:  # noqa: BLE001 - a refusal is an error of this benchmark's class
            server.errors.append(f"student {number}, Start: {type(error).__name__}: {error}")
            continue
        result["outcomes"].append({"outcome": request.outcome, "run_id": request.run_id, "seconds": time.perf_counter() - asked})
    room.log(f"student {number} pressed Start: {', '.join(o['outcome'] for o in result['outcomes'])}")

    step("Compare", lambda: at.switch_page("pages/compare.py").run())
    if any(widget.key == "compare_view" for widget in at.segmented_control):
        step("Compare: every run", lambda: at.segmented_control(key="compare_view").set_value("runs").run())

    first = _wait_for_first_result(room, person.id)
    if first is None:  # counted by run_way, which also sees the students still waiting at the deadline
        return
    result["first_result_s"] = max(result["start_s"], room.seconds(first.finished_at))
    room.log(f"student {number}: first result after {result['first_result_s'] - result['start_s']:.0f} s")
    step("Predict", lambda: at.switch_page("pages/predict.py").run())
    step("Predict: own model", lambda: at.selectbox(key="predict_run").set_value(first.run_id).run())
    upload = ("my-photo.jpg", photo(number), "image/jpeg")
    step("Predict: upload a photo", lambda: at.file_uploader(key="predict_upload").set_value(upload).run())
    if not any("% sure" in str(markdown.value) for markdown in at.markdown):
        server.errors.append(f"student {number}: Predict showed no answer")


def _set_state(at, **values):
    for key, value in values.items():
        at.session_state[key] = value
    return at


def _wait_for_first_result(room: Classroom, person_id: str):
    """The student's first completed run (their own or one they follow), or None at the deadline."""
    from lab.store.records import Status

    while time.monotonic() < room.deadline:
        mine = room.store.runs_of(person_id)
        done = sorted((run for run in mine if run.status is Status.COMPLETED), key=lambda run: run.finished_at)
        if done:
            return done[0]
        if mine and all(run.status in (Status.FAILED, Status.CANCELLED) for run in mine):
            return None
        time.sleep(RESULT_POLL_S)
    return None


# ---------------------------------------------------------------- memory and processes


class MemorySampler(threading.Thread):
    """Samples the resident memory of this process's children (the workers) twice a second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.workers: dict[int, dict] = {}  # pid -> started (epoch s), command, peak_mb
        self.workers_peak_mb = 0.0  # every worker at once

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.is_set():
            total = 0.0
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss / 2**20
                    if child.pid not in self.workers:
                        self.workers[child.pid] = {"started": child.create_time(), "command": " ".join(child.cmdline()[1:]), "peak_mb": 0}
                except psutil.Error:
                    continue
                self.workers[child.pid]["peak_mb"] = max(self.workers[child.pid]["peak_mb"], rss)
                total += rss
            self.workers_peak_mb = max(self.workers_peak_mb, total)
            self.stop.wait(SAMPLE_S)


def stop_children() -> None:
    """Kill the processes this one started (the workers), by pid, and reap them."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(children, timeout=10)


def start_fcfs_worker(store, data_dir: str, cold: bool, log_path: Path) -> subprocess.Popen:
    """The first-come-first-served worker, registered in the store's worker slot before any student arrives."""
    from lab.jobs import launcher

    if cold:
        command = [sys.executable, "-m", "bench.classroom_sim", "fcfs-worker", str(store.root), data_dir, "--cold"]
    else:  # lab's own worker, taking the oldest run first and staying for the whole class
        command = [sys.executable, "-m", "lab.jobs.worker", "--lab-home", str(store.root), "--order", "oldest"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CIFAR10_DIR": data_dir, "LAB_WORKER_IDLE_SECONDS": "7200"}
    with open(log_path, "ab") as log:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while worker.pid not in launcher.live_workers(store):
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError(f"the first-come-first-served worker did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.2)
    return worker


# ---------------------------------------------------------------- the first-come-first-served worker (the contender)


def fcfs_worker(lab_home: str, data_dir: str, *, cold: bool = False, one_run: bool = False) -> None:
    """Train the oldest queued run first, until the process that started this one is gone.

    Warm: TensorFlow and the data stay loaded between runs. `cold`: this process only holds the
    worker slot and trains every run in a new process (`one_run`: claim the oldest run, train it, exit).
    """
    from lab.jobs import launcher
    from lab.jobs.worker import WORKER_NICENESS
    from lab.store.runs import Store
    from lab.system import processes

    store = Store(lab_home)
    if one_run:
        run_id = store.claim_next_queued(os.getpid())
        if run_id is not None:
            _train_claimed(store, run_id, None, data_dir)
        return
    processes.lower_priority(WORKER_NICENESS)  # as lab's worker does: the pages go first
    launcher.register_worker(store, os.getpid())
    parent, data = os.getppid(), None
    try:
        while os.getppid() == parent:
            if cold and store.list_runs(status="queued"):
                subprocess.run([sys.executable, "-m", "bench.classroom_sim", "fcfs-worker", lab_home, data_dir, "--one-run"], check=False)
                continue
            run_id = None if cold else store.claim_next_queued(os.getpid())  # the store's default chooser: the oldest run
            if run_id is not None:
                data = _train_claimed(store, run_id, data, data_dir)
            else:
                time.sleep(IDLE_POLL_S)
    finally:
        launcher.unregister_worker(store, os.getpid())


def _train_claimed(store, run_id: str, data, data_dir: str):
    """Train one claimed run as lab's worker does (events, cancel flag, failure recorded); returns the data for the next."""
    from lab.data.cifar10 import load_cifar10
    from lab.jobs import worker
    from lab.jobs.outcome import Failed, one_line, record_outcome, train_and_record

    print(f"[fcfs worker {os.getpid()}] run {run_id}", flush=True)
    try:
        data = data if data is not None else load_cifar10(data_dir)
        train_and_record(
            store.get_run(run_id).config,
            store,
            lambda event: store.add_event(run_id, event),
            run_id=run_id,
            data=data,
            should_stop=worker.cancel_checker(store, run_id),
            keep_when_stopped=lambda: store.keep_requested(run_id),
        )
    except Exception as error:  # noqa: BLE001 - one failed run must not stop the queue
        traceback.print_exc()
        record_outcome(store, run_id, Failed(one_line(error)))  # unless training has recorded it already
    worker.free_memory()
    return data


# ---------------------------------------------------------------- whose workers may train a way's runs


def is_own_worker(way: str, command: str) -> bool:
    """Whether a process with this command line is one of `way`'s own workers (the only ones that may train its runs)."""
    if way == "fair":  # lab's own worker, as the launcher starts it: fair order
        return "lab.jobs.worker" in command and "--order oldest" not in command
    if way == "fcfs":
        return "lab.jobs.worker" in command and "--order oldest" in command
    return "bench.classroom_sim fcfs-worker" in command  # fcfs-cold: the slot holder's one-run processes


def keep_the_app_from_starting_workers() -> list[float]:
    """In this process, make lab's launcher start no worker: the first-come-first-served workers are the only ones.

    `ask_for_run`, the pages and `queue.recover` all start workers through `launcher.start_worker`
    (called by `ensure_workers`); replaced here, it starts nothing and records when it was asked.
    """
    from lab.jobs import launcher

    asked: list[float] = []

    def start_no_worker(store, data_dir=None) -> int:
        asked.append(time.monotonic())
        return 0

    launcher.start_worker = start_no_worker
    return asked


def foreign_runs(way: str, runs: list[dict]) -> list[str]:
    """Errors for the runs a worker of another way (or a process this way did not start) trained."""
    return [
        f"run {run['run_id']} was trained by {_who(run)}, not by one of the {way} way's own workers"
        for run in runs
        if run["worker_pid"] and not is_own_worker(way, run["worker"])
    ]


def _who(run: dict) -> str:
    return f"'{run['worker']}' (pid {run['worker_pid']})" if run["worker"] else f"pid {run['worker_pid']}, a process this way did not start"


# ---------------------------------------------------------------- one way, start to end


def run_way(spec: dict) -> dict:
    """The class of `spec` on a fresh store in spec["workspace"]; returns the figures."""
    workspace = Path(spec["workspace"])
    lab_home = workspace / "lab_home"
    os.environ.update(LAB_HOME=str(lab_home), CIFAR10_DIR=spec["data_dir"], LAB_TEACHER_PASSWORD=secrets.token_urlsafe(12))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from streamlit.testing.v1 import AppTest

    from lab.classroom.limits import ClassLimits, save_limits
    from lab.jobs import launcher, queue
    from lab.store.owners import Person
    from lab.store.runs import Store

    store = Store(lab_home)
    teacher = Person("teacher", "Teacher", is_teacher=True)
    save_limits(store, ClassLimits(allowed_presets=("quick-demo",), max_queued_per_student=2), by=teacher)  # the teacher, before class
    app_worker_starts = keep_the_app_from_starting_workers() if spec["way"] != "fair" else []
    sampler = MemorySampler()
    sampler.start()
    try:
        for _ in range(launcher.max_jobs() if spec["way"] != "fair" else 0):  # as many as lab would start
            start_fcfs_worker(store, spec["data_dir"], spec["way"] == "fcfs-cold", workspace / "fcfs-worker.log")
        warm_up = time.perf_counter()
        AppTest.from_file(APP, default_timeout=PAGE_TIMEOUT_S).run()  # the teacher opens the app before the class comes in
        warm_up_s = time.perf_counter() - warm_up
        room = Classroom(spec, store)
        room.log(
            f"server warm after {warm_up_s:.0f} s; {spec['plan']['students']} students arrive over {spec['plan']['arrive_over']:.0f} s"
        )
        threads = [threading.Thread(target=attend, args=(room, student), daemon=True) for student in plan_class(**spec["plan"])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, room.deadline - time.monotonic()))
        while queue.active_runs(store) and time.monotonic() < room.deadline:  # the runs still queued (eager seconds)
            time.sleep(1)
        all_done_s = room.now_s()
        room.log("done" if not queue.active_runs(store) else "deadline reached")
        runs = run_figures(room, sampler)
    finally:
        sampler.stop.set()
        stop_children()
    errors = list(room.server.errors)
    errors += [
        f"student {student['number']}: no result by the deadline" for student in room.results.values() if "first_result_s" not in student
    ]
    errors += [f"run {run['run_id']} of student {run['student']}: {run['status']} {run['message'] or ''}" for run in runs if run["failed"]]
    errors += foreign_runs(spec["way"], runs)  # every run trained by this way's own workers, none by another way's
    return {
        "way": spec["way"],
        "students": list(room.results.values()),
        "runs": runs,
        "timings": room.server.timings,
        "errors": errors,
        "warm_up_s": warm_up_s,
        "all_done_s": all_done_s,
        "unfinished": len(queue.active_runs(store)),
        "server_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "workers_peak_mb": sampler.workers_peak_mb,
        "worker_processes": len(sampler.workers),
        "app_worker_starts_refused": len(app_worker_starts),
        "max_jobs": launcher.max_jobs(),
    }


def run_figures(room: Classroom, sampler: MemorySampler) -> list[dict]:
    """Every run of the store, oldest first: whose, when queued, claimed, first progress event, finished; cold or warm."""
    from lab.store.records import Status

    runs = []
    for run in reversed(room.store.list_runs()):
        first_event = room.store.events(run.run_id, limit=1)
        worker = sampler.workers.get(run.worker_pid or 0, {})
        runs.append(
            {
                "run_id": run.run_id,
                "student": room.owners.get(run.owner_id),
                "status": run.status.value,
                "message": run.message,
                "failed": run.status in (Status.FAILED, Status.CANCELLED),
                "queued_s": room.seconds(run.created_at),
                "claimed_s": room.seconds(run.started_at),
                "first_event_s": room.seconds(first_event[0]["created_at"]) if first_event else None,
                "finished_s": room.seconds(run.finished_at),
                "worker_pid": run.worker_pid,
                "worker": worker.get("command", ""),
                "process_start_s": (worker["started"] - room.started_utc.timestamp()) if worker else None,
            }
        )
    # A run's start cost: from when its worker could take it (the worker's process start, or its previous run's end;
    # or the run's queueing, if later) to its first progress event. A process's first run (cold) pays for TensorFlow's
    # import and the data loading; a warm worker's next run only for clearing the last one and building the model.
    free_since: dict[int, float | None] = {}
    for run in sorted((run for run in runs if run["claimed_s"] is not None), key=lambda run: run["claimed_s"]):
        run["cold"] = run["worker_pid"] not in free_since
        ready = run["process_start_s"] if run["cold"] else free_since[run["worker_pid"]]
        if run["first_event_s"] is not None and ready is not None:
            run["start_cost_s"] = run["first_event_s"] - max(run["queued_s"], ready)
        free_since[run["worker_pid"]] = run["finished_s"]
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.classroom_sim", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    way = commands.add_parser("way", help="run one way of bench.classroom_load (called by it)")
    way.add_argument("spec", help="a JSON file: the way, the class, the data, the deadline")
    way.add_argument("result", help="where the figures go (JSON)")
    worker = commands.add_parser("fcfs-worker", help="the first-come-first-served worker (started by a way)")
    worker.add_argument("lab_home")
    worker.add_argument("data_dir")
    worker.add_argument("--cold", action="store_true", help="train every run in a new process")
    worker.add_argument("--one-run", action="store_true", help="claim the oldest queued run, train it, exit")
    args = parser.parse_args(argv)
    if args.command == "fcfs-worker":
        fcfs_worker(args.lab_home, args.data_dir, cold=args.cold, one_run=args.one_run)
        return
    figures = run_way(json.loads(Path(args.spec).read_text()))
    Path(args.result).write_text(json.dumps(figures))
    waits = [result["first_result_s"] - result["start_s"] for result in figures["students"] if "first_result_s" in result]
    print(
        f"{figures['way']}: {len(figures['errors'])} errors; median first result {statistics.median(waits) if waits else '-'} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
