"""The memory-mapped TRX engine: load, validate, select, save.

>>> import numpy as np
>>> from trx_nipype.core import TrxFile
>>> trx = TrxFile.from_arrays(np.zeros((5, 3), np.float32), lengths=[2, 3],
...                           groups={"CST": [1]})
>>> len(trx), trx.nb_vertices, trx.get_group("CST").lengths.tolist()
(2, 5, [3])
"""

from . import growable  # noqa: F401 (defines the class TrxFile.empty makes)
from .concatenating import concatenate
from .converting import convert, load_any
from .errors import SpaceMismatchError, TrxFormatError
from .loader import ValidationReport, load, validate
from .saving import save
from .tempfiles import get_temp_root, set_temp_root
from .trxfile import TrxFile
from .writer import TrxWriteError

__all__ = [
    "SpaceMismatchError",
    "TrxFile",
    "TrxFormatError",
    "TrxWriteError",
    "ValidationReport",
    "concatenate",
    "convert",
    "get_temp_root",
    "load",
    "load_any",
    "save",
    "set_temp_root",
    "validate",
]
