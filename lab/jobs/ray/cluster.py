"""Whether the lab trains on a Ray cluster, and what the app knows of it: read without importing Ray.

With `LAB_RAY_ADDRESS` set (for example `192.168.1.10:6379`, the address `ray start --head`
prints), queued runs go to that cluster instead of local worker processes: the app still
decides which run goes next (fair turns, class limits, no duplicates), Ray decides where it runs
(lab/jobs/ray/dispatch.py). Unset, nothing here is used and Ray need not be installed.

The dispatcher writes what it last saw of the cluster into `<store root>/cluster.json`, so the
app's pages can say "the cluster does not answer" without connecting to it themselves.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

STATUS_FILE = "cluster.json"
DEFAULT_CPUS_PER_RUN = 2  # a CPU run's share of a node; a GPU run asks for one GPU instead
CONNECT_TIMEOUT_SECONDS = 3.0


def ray_address(explicit: str | None = None) -> str | None:
    """The cluster to train on: `explicit` (a command's --ray-address), else LAB_RAY_ADDRESS, else None (local workers)."""
    address = explicit or os.environ.get("LAB_RAY_ADDRESS", "")
    return address.strip() or None


def cpus_per_run() -> float:
    """How many of a node's CPUs one run asks Ray for (the LAB_RAY_CPUS_PER_RUN setting); its TensorFlow uses that many threads."""
    try:
        return max(0.5, float(os.environ.get("LAB_RAY_CPUS_PER_RUN", DEFAULT_CPUS_PER_RUN)))
    except ValueError:
        return float(DEFAULT_CPUS_PER_RUN)


def workers_per_run(explicit: int | None = None) -> int:
    """How many Ray Train workers train each run together (`--ray-workers`, else LAB_RAY_WORKERS_PER_RUN; default 1).

    One worker is a plain Ray task. Two or more train one model at once on several machines
    (MultiWorkerMirroredStrategy): worth it for runs long enough to repay the workers' start and
    the gradients they exchange after every step; a class's short runs train faster one per node.
    """
    raw = explicit if explicit is not None else os.environ.get("LAB_RAY_WORKERS_PER_RUN", "1")
    try:
        workers = int(raw)
    except ValueError:
        raise ValueError(f"LAB_RAY_WORKERS_PER_RUN must be a whole number of workers (1 or more); got {raw!r}") from None
    if workers < 1:
        raise ValueError(f"a run needs at least 1 Ray worker; got {workers}")
    return workers


# What to do when a run asks one node for more of a resource than the biggest node has (`{largest}`: what it has).
ADVICE_FOR = {"CPU": "Set LAB_RAY_CPUS_PER_RUN to {largest} or less, or add a bigger node."}
ADVICE_OTHERWISE = "Add a node with more {unit}, or run on a cluster that has some."
UNITS = {"CPU": "CPU", "GPU": "GPU", "memory": "bytes of memory"}


class RunDoesNotFit(ValueError):
    """The run asks one node for more than any node of the cluster has: Ray would keep it waiting for ever."""


def why_no_node_fits(nodes: list[dict[str, float]], per_worker: dict[str, float], workers: int = 1) -> str | None:
    """None when the cluster can hold the run; otherwise why not, in a sentence that names the setting to change.

    `nodes` holds each live node's resources as Ray lists them ({"CPU": 8.0, "GPU": 1.0, "memory": ...});
    `per_worker` is what one worker of the run asks of a single node (a run of one worker is one Ray task).
    Two checks, because Ray waits silently on either: every worker must fit on some node, and all
    `workers` of a run must fit on the cluster at once (several on one node when it has room for them).
    No nodes at all is not told here: the cluster is still starting, and the dispatcher waits for it.
    """
    if not nodes:
        return None
    for resource, wanted in per_worker.items():
        largest = max(node.get(resource, 0.0) for node in nodes)
        if wanted > largest:
            return (
                f"This run needs {_amount(wanted, resource)} on one computer, but the biggest computer (node) of the Ray cluster has "
                f"{_amount(largest, resource)}, so it would wait for ever. "
                + ADVICE_FOR.get(resource, ADVICE_OTHERWISE).format(largest=f"{largest:g}", unit=UNITS.get(resource, resource))
            )
    room = sum(_workers_on(node, per_worker) for node in nodes)
    if room < workers:
        return (
            f"This run needs {workers} workers of {_amount(per_worker.get('CPU', 0.0), 'CPU')} each at once, but the Ray cluster "
            f"has room for {room}, so it would wait for ever. Set LAB_RAY_WORKERS_PER_RUN (or --ray-workers) to {room} or less, "
            "lower LAB_RAY_CPUS_PER_RUN, or add nodes."
        )
    return None


def _workers_on(node: dict[str, float], per_worker: dict[str, float]) -> int:
    """How many of the run's workers one node holds at once (a tiny margin: Ray's resources are floats)."""
    counts = [int(node.get(resource, 0.0) / wanted + 1e-9) for resource, wanted in per_worker.items() if wanted > 0]
    return min(counts) if counts else 0


def _amount(value: float, resource: str) -> str:
    unit = UNITS.get(resource, resource)
    return f"{value:g} {unit}{'s' if unit in ('CPU', 'GPU') and value != 1 else ''}"


def fall_back_to_local() -> bool:
    """Whether queued runs train on local workers while the cluster does not answer (LAB_RAY_FALLBACK=local)."""
    return os.environ.get("LAB_RAY_FALLBACK", "").strip().lower() == "local"


def answers(address: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> str | None:
    """None when something listens at the cluster's address; otherwise why not, in a sentence.

    A plain TCP connection, so a wrong or dead address is told in seconds rather than after Ray's
    own, much longer, connection timeout.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return f"LAB_RAY_ADDRESS {address!r} is not HOST:PORT (for example 192.168.1.10:6379, as `ray start --head` prints it)."
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return None
    except OSError as error:
        return f"the Ray cluster at {address} does not answer ({error.strerror or error}); is `ray start --head` running there?"


def write_status(store_root: str | Path, **status) -> None:
    """Record what the dispatcher just saw of the cluster (atomically: a page never reads half of it)."""
    path = Path(store_root) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({**status, "checked_at": time.time()}), encoding="utf-8")
    os.replace(temporary, path)


def read_status(store_root: str | Path) -> dict | None:
    """What the dispatcher last saw of the cluster: {"ok", "address", "message", "nodes", "cpus", "gpus", "too_small", "checked_at"}, or None."""
    try:
        return json.loads((Path(store_root) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def trouble_word(store_root: str | Path) -> str:
    """The sidebar's few words for an unhealthy cluster: one that answers but has no node big enough, or one that does not answer."""
    return "cluster too small" if (read_status(store_root) or {}).get("too_small") else "cluster unreachable"


def status_line(store_root: str | Path) -> tuple[bool, str] | None:
    """For the sidebar and the Train page: (healthy, a sentence) about the cluster, or None when runs train locally."""
    address = ray_address()
    if address is None:
        return None
    status = read_status(store_root)
    if status is None or status.get("address") != address:
        return True, f"Runs train on the Ray cluster at {address}."
    if status.get("too_small"):  # the cluster answers, but no node can hold a run with these settings
        return False, status["too_small"]
    if not status.get("ok"):
        fallback = " They train here meanwhile." if fall_back_to_local() else " Queued runs wait until it answers."
        return False, f"{status.get('message') or 'The Ray cluster does not answer.'}{fallback}"
    nodes, cpus, gpus = status.get("nodes", 0), status.get("cpus", 0), status.get("gpus", 0)
    hardware = f"{nodes} node{'s' if nodes != 1 else ''}, {cpus:g} CPUs" + (f", {gpus:g} GPUs" if gpus else "")
    return True, f"Runs train on the Ray cluster at {address} ({hardware})."
