"""feedback_pipelines: daily Dagster pipelines over LLM user feedback."""

import os

__version__ = "0.1.0"


def _small_pages_for_numpy() -> None:
    """Large numpy arrays on 4 KB pages, unless `NUMPY_MADVISE_HUGEPAGE` says otherwise.

    numpy marks each allocation of 4 MB or more `MADV_HUGEPAGE`. Where the kernel's THP mode
    is `madvise`, as on the reference VM, the first touch of such memory faults in 2 MB pages,
    which cost there ~5 s of system time per GB against ~0.5 s on 4 KB pages (numpy#31590).
    A step allocates and frees gigabytes: the first 100k-event day spent ~10 s less outside
    embedding without them (docs/deploy/SCALE.md).
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    from numpy._core import multiarray

    multiarray._set_madvise_hugepage(False)


_small_pages_for_numpy()
