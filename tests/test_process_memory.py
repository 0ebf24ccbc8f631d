"""A process that trains again and again (the Streamlit server, a job worker) must not keep each run's graphs.

Counted by what stays alive, not by memory figures: the number of traced graphs
(`FuncGraph`) left once a model is gone. Without lab/system/process_memory.py every training
trace leaves its graphs behind (TensorFlow issue #97697), and the weights with them.
"""

import gc

import keras
import numpy as np
import pytest
from tensorflow.python.framework.func_graph import FuncGraph

from lab.config import RunConfig
from lab.insight.lr_finder import lr_find
from lab.system import process_memory
from lab.train.estimate import measure_step_seconds
from lab.train.run import run
from tests.synthetic import learnable_cifar10


def live_graphs() -> int:
    gc.collect()
    return sum(isinstance(thing, FuncGraph) for thing in gc.get_objects())


def train_one_batch() -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(np.zeros((2, 4), "float32"), np.zeros((2,)))


def test_a_training_step_traced_inside_the_block_leaves_no_graph_behind():
    before = live_graphs()
    with process_memory.releasing_traced_graphs():
        train_one_batch()
        assert process_memory.traced_gradient_names(), "the optimizer's all-reduce should register a custom gradient while tracing"
    assert live_graphs() == before


def test_entries_from_before_the_block_are_left_alone():
    train_one_batch()  # traced outside any block: its entry stays, as every earlier one does
    before = set(process_memory.traced_gradient_names())
    with process_memory.releasing_traced_graphs():
        train_one_batch()
        inside = set(process_memory.traced_gradient_names())
        with process_memory.releasing_traced_graphs():
            train_one_batch()
        assert set(process_memory.traced_gradient_names()) == inside  # the inner block removed only its own
    assert set(process_memory.traced_gradient_names()) == before  # and the outer block only its own
    assert before and inside > before


@pytest.mark.slow
@pytest.mark.parametrize(
    "train",
    [
        pytest.param(lambda data: measure_step_seconds(RunConfig(batch_size=16), steps=1), id="step timing (Train page)"),
        pytest.param(lambda data: lr_find(RunConfig(batch_size=16), data, steps=5, subset=None), id="learning-rate finder (Train page)"),
        pytest.param(lambda data: run(RunConfig(epochs=1, batch_size=32), data=data), id="a whole run (job worker)"),
    ],
)
def test_what_the_server_and_the_workers_train_leaves_no_graph_behind(train):
    data = learnable_cifar10(n_train=100, n_test=20)
    before_graphs, before_names = live_graphs(), set(process_memory.traced_gradient_names())
    result = train(data)
    del result
    assert set(process_memory.traced_gradient_names()) == before_names
    assert live_graphs() == before_graphs
