"""One run trained by several machines at once: Keras 3's `fit` under MultiWorkerMirroredStrategy.

Each machine (a "worker") holds a full copy of the model and trains on its slice of every batch;
after each step the workers add up their gradients over the network (an all-reduce), so every
copy takes the same step. TensorFlow reads who the workers are from `TF_CONFIG`, which Ray Train
sets for each of them (lab/jobs/ray/node.py).

Keras 3's TensorFlow trainer does not run under this strategy as it ships (keras-team/keras#20585):

1. Before the first step it all-reduces a whole first batch, images and labels together, only to
   learn their shapes; TensorFlow's all-reduce takes one tensor, not a pair, and fails. Any one
   worker's own slice tells the same shapes: `_build_from_local_batch` reads that instead.
2. After each step it averages the loss and metrics across workers along axis 0, which a single
   number does not have: `_average_across_workers` averages a single number as a whole.

`enable()` swaps these two methods in, in a multi-worker process only, and refuses to run on a
Keras whose trainer no longer looks as expected, so a new Keras cannot be patched by mistake.
"""

from __future__ import annotations

import tensorflow as tf

_enabled = False


def enable() -> None:
    """Let Keras' `fit` run under MultiWorkerMirroredStrategy in this process (idempotent)."""
    global _enabled
    if _enabled:
        return
    from keras.src.backend.tensorflow import trainer

    original_reduce = getattr(trainer, "reduce_per_replica", None)
    is_multi_worker = getattr(trainer, "_collective_all_reduce_multi_worker", None)
    if original_reduce is None or is_multi_worker is None or not hasattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build"):
        raise RuntimeError(
            "this Keras version's trainer is not the one lab.train.multi_worker knows how to fix; "
            "train this run on one machine (LAB_RAY_WORKERS_PER_RUN=1)"
        )

    def _build_from_local_batch(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(_one_local_value(self.distribute_strategy), next(batches))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def _average_across_workers(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy):
            return tf.nest.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None if value.shape.rank == 0 else 0), values)
        return original_reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _build_from_local_batch
    trainer.reduce_per_replica = _average_across_workers
    _enabled = True


# How long a worker may go without a sign of life before the others give up on it. TensorFlow's own
# default is a few seconds, which a worker sharing a busy machine can miss while it is only slow; a worker
# that really died is noticed sooner anyway, by Ray Train (its actor is gone) or by the failed all-reduce.
HEARTBEAT_TIMEOUT_SECONDS = 300


def patient_coordination(cluster: dict[str, list[str]]) -> bool:
    """Set up TensorFlow's coordination service (how the workers check on each other) with a patient heartbeat.

    `cluster`: the machines by job, as TF_CONFIG names them (lab.train.devices.tf_config_cluster).
    MultiWorkerMirroredStrategy sets the service up with TensorFlow's defaults unless it already is: call
    this just before making the strategy. Returns False (and changes nothing) without a cluster, or on a
    TensorFlow whose private context no longer offers this setting.
    """
    jobs = [job for job in ("chief", "worker") if cluster.get(job)]
    if not jobs:
        return False
    from tensorflow.python.eager import context

    coordination_config_pb2 = getattr(context, "coordination_config_pb2", None)  # wherever this TensorFlow keeps it
    if coordination_config_pb2 is None or not hasattr(context.context(), "configure_coordination_service"):
        return False
    leader = f"/job:{jobs[0]}/replica:0/task:0"  # as TensorFlow picks it: the chief, else the first worker
    coordinated = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster[job])) for job in jobs]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=leader,
        coordinated_jobs=coordinated,
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_SECONDS * 1000,
    )
    return True


def _one_local_value(strategy):
    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return local
