"""Where the files the app ships live (assets/: the lab report's table, the default model).

In a checkout, and in an editable install (`pip install -e .`), assets/ sits beside the `lab`
package. A regular install (`pip install .`) copies it into the environment's data folder,
`<prefix>/share/cifar10-lab/assets` (pyproject.toml's data-files), because a wheel holds only
packages at its top. The first place that holds the report's table wins.
"""

from __future__ import annotations

import site
import sys
from pathlib import Path

INSTALLED_ASSETS = Path("share") / "cifar10-lab" / "assets"  # under the install prefix: see pyproject.toml


def find_assets_dir() -> Path:
    """The assets folder of this checkout or install (the checkout's path when none is found, so messages name it)."""
    beside_the_code = Path(__file__).resolve().parents[2] / "assets"
    prefixes = [sys.prefix, getattr(site, "USER_BASE", None) or ""]
    candidates = [beside_the_code, *(Path(prefix) / INSTALLED_ASSETS for prefix in prefixes if prefix)]
    for folder in candidates:
        if (folder / "report_results.csv").is_file():
            return folder
    return beside_the_code


ASSETS_DIR = find_assets_dir()
REFERENCE_RESULTS_CSV = ASSETS_DIR / "report_results.csv"  # the lab report's published results
DEFAULT_MODEL_DIR = ASSETS_DIR / "default_model"  # the model the Predict page offers before anyone trains one
