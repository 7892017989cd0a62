"""Reusable Nipype workflows over TRX files, and whole pipelines over a dataset.

Builders (sub-workflows with ``inputnode``/``outputnode``):

- :func:`init_subject_bundles_wf`: one subject's bundle files -> one TRX, one group per bundle;
- :func:`init_population_bundles_wf`: for each bundle, every subject's group -> one TRX,
  one group per subject (optionally a balanced, seeded number of streamlines each);
- :func:`init_convert_bundles_wf`: tractogram files -> another format;
- :func:`init_tractometry_wf`: filter a tractogram, sample a scalar map along it, profile its
  tracts and map its density (``workflows/tractography_pipeline.py`` runs it after tracking).

Pipelines over a :class:`Dataset` (subjects as iterables, population steps as joins, a
derivatives tree with JSON sidecars): :func:`init_bundles_pipeline_wf`,
:func:`init_convert_pipeline_wf`; run them with :func:`run_workflow` (work dir: by
default :func:`default_work_dir`, beside the output folder).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; the run imports on first use
    from .bundles import init_population_bundles_wf, init_subject_bundles_wf
    from .conversion import init_convert_bundles_wf
    from .dataset import Dataset, DatasetError, Subject, find_dataset
    from .pipelines import init_bundles_pipeline_wf, init_convert_pipeline_wf
    from .runner import RunReport, default_work_dir, run_workflow
    from .tractometry import init_tractometry_wf

#: each public name -> the module that owns it; imported on first use, so that what
#: needs no Nipype (:mod:`.dataset`, :mod:`.runlock`, :mod:`.runrecord`: the start of
#: ``trx-nipype run`` and its no-change rerun) does not import it
_OWNERS = {
    "Dataset": "dataset",
    "DatasetError": "dataset",
    "RunReport": "runner",
    "Subject": "dataset",
    "default_work_dir": "runner",
    "find_dataset": "dataset",
    "init_bundles_pipeline_wf": "pipelines",
    "init_convert_bundles_wf": "conversion",
    "init_convert_pipeline_wf": "pipelines",
    "init_population_bundles_wf": "bundles",
    "init_subject_bundles_wf": "bundles",
    "init_tractometry_wf": "tractometry",
    "run_workflow": "runner",
}


def __getattr__(name: str) -> Any:
    """The public names, each from its module on first use (PEP 562)."""
    module = _OWNERS.get(name)
    if module is None:  # a submodule (``trx_nipype.workflows.pipelines``)?
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_OWNERS])


__all__ = [
    "Dataset",
    "DatasetError",
    "RunReport",
    "Subject",
    "default_work_dir",
    "find_dataset",
    "init_bundles_pipeline_wf",
    "init_convert_bundles_wf",
    "init_convert_pipeline_wf",
    "init_population_bundles_wf",
    "init_subject_bundles_wf",
    "init_tractometry_wf",
    "run_workflow",
]
