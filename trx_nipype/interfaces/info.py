"""TrxInfo: what a TRX holds, as node outputs and a JSON file (``trx-nipype info --json``)."""

from __future__ import annotations

import logging
from typing import Any

from nipype.interfaces.base import File, SimpleInterface, TraitedSpec, traits

from trx_nipype.core.operations import write_info
from trx_nipype.core.operations.info import check_info_replaceable

from ._traits import TrxInputSpec, TrxPath, optional, output_path

log = logging.getLogger("nipype.interface")


def node_fields(info: dict[str, Any]) -> dict[str, Any]:
    """The flat outputs nodes give from a :func:`~trx_nipype.core.summary.summarize` dict."""
    return {
        "nb_streamlines": info["nb_streamlines"],
        "nb_vertices": info["nb_vertices"],
        "group_names": list(info["groups"]),
        "group_sizes": list(info["groups"].values()),
        "dps_keys": list(info["dps"]),
        "dpv_keys": list(info["dpv"]),
        "affine": info["affine"],
        "dimensions": info["dimensions"],
        "positions_dtype": info["positions_dtype"],
        "container": info["container"],
        **{f"length_mm_{k}": v for k, v in info.get("length_mm", {}).items()},
    }


class _TrxInfoInputSpec(TrxInputSpec):
    in_file = TrxPath(exists=True, mandatory=True,
                      desc="tractogram: TRX (zip or directory), TRK, TCK, ...")
    reference = File(exists=True, trx_hash=True,
                     desc="reference image (NIfTI) placing a file without a space (TCK...); "
                          "not needed to count (affine and dimensions are then null)")
    out_filename = traits.Str(desc="name of the JSON summary (default: <input>_info.json)")


class _TrxInfoOutputSpec(TraitedSpec):
    out_json = File(exists=True, desc="JSON summary: counts, space, dtypes, keys, points per "
                                      "streamline and length in mm (min, mean, max)")
    nb_streamlines = traits.Int(desc="number of streamlines")
    nb_vertices = traits.Int(desc="number of vertices")
    group_names = traits.List(traits.Str, desc="names of the groups, sorted")
    group_sizes = traits.List(traits.Int, desc="streamlines in each group (group_names order)")
    dps_keys = traits.List(traits.Str, desc="data-per-streamline keys, sorted")
    dpv_keys = traits.List(traits.Str, desc="data-per-vertex keys, sorted")
    positions_dtype = traits.Str(desc="dtype of the positions (float16, float32, float64)")
    container = traits.Str(desc="'zip' or 'directory'")
    length_mm_min = traits.Float(desc="shortest streamline, in mm")
    length_mm_mean = traits.Float(desc="mean streamline length, in mm")
    length_mm_max = traits.Float(desc="longest streamline, in mm")


class TrxInfo(SimpleInterface):
    """Summarize a TRX: counts, space, dtypes, groups and keys, as outputs and JSON.

    Examples
    --------
    >>> import json, tempfile
    >>> from trx_nipype.interfaces._examples import example_trx
    >>> tmp = tempfile.mkdtemp()
    >>> res = TrxInfo(in_file=example_trx(tmp)).run(cwd=tmp)
    >>> res.outputs.nb_streamlines, res.outputs.group_names, res.outputs.group_sizes
    (6, ['AF', 'CST'], [3, 3])
    >>> list(json.load(open(res.outputs.out_json, encoding="utf-8"))["dps"])  # = info --json
    ['weight']
    """

    input_spec = _TrxInfoInputSpec
    output_spec = _TrxInfoOutputSpec

    def _run_interface(self, runtime: Any) -> Any:
        in_file = self.inputs.in_file
        out = output_path(in_file, "_info", ".json", self.inputs.out_filename,
                          replaceable=check_info_replaceable)
        info = write_info(in_file, out, reference=optional(self.inputs.reference),
                          overwrite=True)
        fields = node_fields(info)
        log.info("TrxInfo: %s: %d streamlines, %d vertices, groups %s", in_file,
                 fields["nb_streamlines"], fields["nb_vertices"], fields["group_names"])
        self._results.update(out_json=str(out), **{k: fields[k] for k in (
            "nb_streamlines", "nb_vertices", "group_names", "group_sizes", "dps_keys",
            "dpv_keys", "positions_dtype", "container", "length_mm_min", "length_mm_mean",
            "length_mm_max")})
        return runtime
