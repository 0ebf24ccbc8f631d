"""What one training produced, as a value: `lab.train.run.run` returns it, lab/jobs records it in a store.

Training knows nothing of stores, run ids or file names. It hands back the trained model, its
numbers and the facts that explain them; lab/jobs/outcome.py decides where each one is kept
(lab/store/run_folder.py names the files). A run on a Ray node sends the same value home, with
the model to save as the bytes of its `.keras` file.

Light on purpose (no Keras, no TensorFlow): the Ray dispatcher and the app read it without loading either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from lab.config import RunConfig


@dataclass
class RunResult:
    """A finished run, or a cancelled one (`cancelled`: it keeps nothing but its history).

    - `model`: the network as it trained (in its training precision), for a caller to use at once;
      `saved_model`: the copy to keep (float32, no optimiser state: `lab.train.run.inference_copy`),
      a Keras model, or the bytes of its `.keras` file once it has travelled from another machine.
    - `metrics`, `history`, `train_seconds`: how it did; `environment` (versions, hardware, where it
      ran) and `fingerprint` (which data it saw): what explains the numbers.
    - `test_probabilities`: its answer for every test image (float16), kept for the Results page.
    - `message`: a sentence about how it ended ("stopped early on request ...", "cancelled after ...").
    - `run_id`: the stored run's id, once lab/jobs has recorded it; None straight from training.
    """

    config: RunConfig
    cancelled: bool = False
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    model: Any = None
    saved_model: Any = None
    environment: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    test_probabilities: np.ndarray | None = None
    run_id: str | None = None

    @property
    def completed(self) -> bool:
        """True for a run that was evaluated and has a model to keep (stopped early on request included)."""
        return not self.cancelled
