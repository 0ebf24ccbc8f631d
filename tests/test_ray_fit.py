"""Whether a run fits on some node of a Ray cluster, decided from the nodes' resources alone: no Ray needed.

Ray itself never says that a task asks for more than any node has: it keeps the task pending for
ever. `cluster.why_no_node_fits` says so in a sentence, which the command line and the dispatcher show
(the run on the real two-node cluster is in tests/test_ray_cluster.py).
"""

from __future__ import annotations

from lab.jobs.ray import cluster

TWO_SMALL_NODES = [{"CPU": 1.0, "memory": 2e9}, {"CPU": 1.0, "memory": 2e9}]


def test_a_run_that_fits_on_a_node_is_not_refused():
    assert cluster.why_no_node_fits(TWO_SMALL_NODES, {"CPU": 1.0}) is None
    assert cluster.why_no_node_fits([{"CPU": 8.0, "GPU": 2.0}], {"CPU": 1.0, "GPU": 1.0}) is None
    assert cluster.why_no_node_fits([{"CPU": 1.0}], {"CPU": 0.5}) is None  # half a CPU each is allowed


def test_more_cpus_than_the_biggest_node_has_names_the_request_the_node_and_the_setting():
    # The first user's cluster: two nodes of one CPU each, and the default of two CPUs per run.
    assert sum(node["CPU"] for node in TWO_SMALL_NODES) >= 2  # the cluster as a whole has the CPUs; no node does
    message = cluster.why_no_node_fits(TWO_SMALL_NODES, {"CPU": 2.0})
    assert message is not None
    assert "needs 2 CPUs on one computer" in message and "has 1 CPU" in message
    assert "LAB_RAY_CPUS_PER_RUN to 1 or less" in message


def test_the_biggest_node_counts_not_the_first():
    assert cluster.why_no_node_fits([{"CPU": 1.0}, {"CPU": 4.0}], {"CPU": 4.0}) is None
    assert "has 4 CPUs" in cluster.why_no_node_fits([{"CPU": 1.0}, {"CPU": 4.0}], {"CPU": 6.0})


def test_a_gpu_or_memory_no_node_has_is_told_too():
    assert "needs 1 GPU" in cluster.why_no_node_fits([{"CPU": 4.0}], {"CPU": 1.0, "GPU": 1.0})
    message = cluster.why_no_node_fits(TWO_SMALL_NODES, {"CPU": 1.0, "memory": 4e9})
    assert "4e+09 bytes of memory" in message and "2e+09 bytes of memory" in message


def test_several_workers_must_each_fit_a_node_and_all_fit_the_cluster_at_once():
    assert cluster.why_no_node_fits(TWO_SMALL_NODES, {"CPU": 1.0}, workers=2) is None  # one per node
    assert cluster.why_no_node_fits([{"CPU": 2.0}], {"CPU": 1.0}, workers=2) is None  # SPREAD may share a node with room
    too_many = cluster.why_no_node_fits(TWO_SMALL_NODES, {"CPU": 1.0}, workers=3)
    assert "needs 3 workers" in too_many and "room for 2" in too_many and "LAB_RAY_WORKERS_PER_RUN" in too_many
    # Three CPUs in all, but a worker of two CPUs fits only on the bigger node: room for one, not two.
    assert "room for 1" in cluster.why_no_node_fits([{"CPU": 2.0}, {"CPU": 1.0}], {"CPU": 2.0}, workers=2)
    # Each worker too big for any node is told as such, before counting room.
    assert "needs 2 CPUs on one computer" in cluster.why_no_node_fits(TWO_SMALL_NODES, {"CPU": 2.0}, workers=2)


def test_a_cluster_with_no_nodes_yet_is_not_refused():
    assert cluster.why_no_node_fits([], {"CPU": 2.0}) is None  # still starting: the dispatcher waits for it


def test_the_app_shows_what_the_dispatcher_recorded_about_a_run_too_big(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_RAY_ADDRESS", "10.0.0.5:6379")
    message = cluster.why_no_node_fits(TWO_SMALL_NODES, {"CPU": 2.0})
    cluster.write_status(tmp_path, ok=True, address="10.0.0.5:6379", message="", nodes=2, cpus=2.0, gpus=0.0, too_small=message)
    assert cluster.status_line(tmp_path) == (False, message)
    cluster.write_status(tmp_path, ok=True, address="10.0.0.5:6379", message="", nodes=2, cpus=2.0, gpus=0.0, too_small=None)
    assert cluster.status_line(tmp_path)[0]
    assert cluster.trouble_word(tmp_path) == "cluster unreachable"  # the sidebar's default word for an unhealthy cluster


def test_the_sidebar_says_the_cluster_is_too_small_and_why(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from lab.store.runs import Store
    from tests.test_cluster_status import APP

    monkeypatch.setenv("LAB_RAY_ADDRESS", "10.0.0.5:6379")
    message = cluster.why_no_node_fits(TWO_SMALL_NODES, {"CPU": 2.0})
    cluster.write_status(Store().root, ok=True, address="10.0.0.5:6379", message="", nodes=2, cpus=2.0, gpus=0.0, too_small=message)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    sidebar = "\n".join(str(element.value) for element in [*at.sidebar.markdown, *at.sidebar.caption])
    assert "cluster too small" in sidebar and message in sidebar
