"""Keep a long-running process from growing: the Streamlit server and the job worker.

Both processes live for hours and train or build networks again and again. Two
things make such a process keep memory it no longer uses; this module undoes both.

1. TensorFlow keeps every traced training step (`releasing_traced_graphs`).
   Keras traces each model's training step into a graph (a `FuncGraph`). Inside that
   step, the optimizer sums the gradients through `tf.distribute`'s `all_reduce`, which
   is written with `tf.custom_gradient`. In graph mode `tf.custom_gradient` registers
   a gradient function under a fresh name ("CustomGradient-1411") in a registry that
   lives as long as the process, and that function's closure holds tensors of the
   traced graph (TensorFlow issue #97697). Through them the registry keeps the whole
   graph alive, and the graph keeps the handles of every variable it captured: the
   model's weights and the optimizer's slots. Deleting the model and calling
   `keras.backend.clear_session()` frees none of it: every training in a long-lived
   process would keep a model's worth of memory (docs/DECISIONS.md, "Long-running
   processes release traced graphs").

   `releasing_traced_graphs()` removes, when its block ends, the entries registered
   while it ran. Nothing needs them afterwards: they are gradients *of* the
   all-reduce, which TensorFlow would only look up to differentiate the optimizer's
   update itself, and none of our networks uses `tf.custom_gradient` in its forward
   pass (Keras' own layers do not either). The registry is TensorFlow's private
   state, so when a TensorFlow version moves it, this does nothing rather than fail.

2. glibc keeps freed heap blocks for reuse (`return_free_heap`). After a network is
   built or an image decoded, the process's resident memory stays at its high-water
   mark although the blocks are free; on a 2.7 GB Community Cloud machine that is
   memory other students' sessions cannot use. `malloc_trim(0)` hands back what is
   free. It takes a millisecond or two.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator

CUSTOM_GRADIENT_PREFIX = "CustomGradient-"  # the names tf.custom_gradient registers in graph mode


def _gradient_registry() -> dict | None:
    """TensorFlow's process-wide table of gradient functions, or None where it is not found."""
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def traced_gradient_names() -> list[str]:
    """The custom-gradient entries registered so far (each one holds a traced graph alive)."""
    registry = _gradient_registry()
    return [name for name in list(registry or ()) if str(name).startswith(CUSTOM_GRADIENT_PREFIX)]


@contextlib.contextmanager
def releasing_traced_graphs() -> Iterator[None]:
    """Unregister, on the way out, the custom gradients traced inside the block, so their graphs can be freed."""
    before = set(traced_gradient_names())
    try:
        yield
    finally:
        registry = _gradient_registry()
        for name in set(traced_gradient_names()) - before:
            registry.pop(name, None)  # another thread may have removed it already


def return_free_heap() -> None:
    """Give the heap memory that is free back to the system (glibc only; elsewhere nothing to do)."""
    if _libc is not None:
        _libc.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (macOS, Windows, musl)
        return None


_libc = _load_libc()
