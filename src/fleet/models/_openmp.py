"""OpenMP load order: torch's runtime before scikit-learn's, in every process that trains a torch model.

When scikit-learn's vendored ``libgomp`` is loaded first (any ``import sklearn`` loads it), a later
``import torch`` brings a second OpenMP runtime and HistGradientBoosting fits become 3-4x slower.
Loading torch first makes one runtime serve both. LightGBM links the system ``libgomp.so.1``, whose soname
torch's wheel shares, so it is served by the same runtime in either order (see :mod:`fleet.models.trend`).

``import fleet`` does not import torch; only the code paths that need torch do, as early as they can:

* the CNN and MLP-gate builders (:mod:`fleet.models.specs`, :func:`fleet.models.factory.build_model`:
  before the first expert of a torch mixture is built) — this covers Ray actors, whose first
  scikit-learn import happens while building the model;
* :func:`fleet.api.train` / ``resume``, before the driver (which imports scikit-learn) is imported,
  when the configuration trains a CNN or the MLP gate;
* :func:`fleet.models.artifact.load_unit_model` (serving, ``fleet.load_run``), before unpickling a
  model that holds torch modules.

Processes that train only gradient boosting and logistic models never load torch at all.
"""

from __future__ import annotations

import sys


def torch_first() -> bool:
    """Import torch unless it is loaded already. Returns False when scikit-learn was imported before
    (then the two OpenMP runtimes coexist and gradient boosting is slower, but results are the same)."""
    if "torch" in sys.modules:
        return True
    early = "sklearn" not in sys.modules
    import torch  # noqa: F401  (load order, see the module docstring)

    return early


def cuda_available() -> bool:
    """Whether torch sees a CUDA device here. Imports torch (after :func:`torch_first`'s order rule): call it only
    where a CNN or the MLP gate is trained."""
    torch_first()
    import torch

    return bool(torch.cuda.is_available())
