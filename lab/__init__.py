"""CIFAR-10 Lab: the library behind the app and the `python -m lab` command line.

Nothing in this package imports streamlit: pages call into it, never the reverse.
"""

import os
import platform

__version__ = "0.1.0"

# TensorFlow has two sets of CPU kernels on x86: Eigen's, and Intel's oneDNN library, which picks
# code for the CPU's own vector instructions and fuses convolution, batch norm and pooling steps.
# TensorFlow switches oneDNN on by itself only on CPUs with AVX-512 VNNI, AVX512-BF16 or AMX; on the
# AVX2 CPUs of most laptops it falls back to Eigen, whose convolutions run as thousands of small
# matrix products, and training is much slower (docs/DECISIONS.md, "oneDNN kernels on x86 CPUs
# without AVX-512"). TensorFlow reads this setting once, when it is first imported, so it is set
# here, before any module of the package imports it; a user's own choice (0 or 1) is kept.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
