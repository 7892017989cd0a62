"""The operations layer: one function per operation, paths in, paths out.

Every operation that the CLI (``trx-nipype <command>``) and the Nipype
interfaces (``trx_nipype.interfaces``) offer is one function here: it opens
its inputs through the one loader, streams its output through the one writer
and returns what the callers report (the output path and small metadata).
The CLI commands and the interfaces are thin wrappers over these functions:
neither loads, selects or saves on its own.

=============================  ===========================  ==============================
function                       CLI                          interface
=============================  ===========================  ==============================
:func:`select_groups`          ``select-group``             ``SelectGroup``
:func:`resize`                 ``resize``                   ``ResizeTrx``
:func:`split_groups`           ``split-groups``             ``SplitGroups``
:func:`concatenate_files`      ``concatenate``              ``ConcatenateTrx``
:func:`convert_file`           ``convert``                  ``ConvertTractogram``
:func:`as_trx`                                              ``LoadTrx``
:func:`tractogram_info`        ``info``                     ``TrxInfo`` (:func:`write_info`)
=============================  ===========================  ==============================

Shared rules (:mod:`.outputs`, :mod:`.inputs`): inputs of any readable format
(converted on the fly, streamed); the output's name picks its format; outputs
are checked before any work (folder exists, not inside an input TRX folder,
never replacing what is not a tractogram, nor anything without ``overwrite``);
errors name the parameter to change (:func:`~trx_nipype.core.errors.param`).
"""

from .concatenation import concatenate_files
from .conversion import as_trx, convert_file, is_trx
from .info import tractogram_info, write_info
from .outputs import Written
from .selection import resize, select_groups
from .split import Split, split_groups

__all__ = [
    "Split",
    "Written",
    "as_trx",
    "concatenate_files",
    "convert_file",
    "is_trx",
    "resize",
    "select_groups",
    "split_groups",
    "tractogram_info",
    "write_info",
]
