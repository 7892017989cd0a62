"""The operations layer: one function per operation, paths in, paths out.

Every operation that the CLI (``trx-nipype <command>``) and the Nipype
interfaces (``trx_nipype.interfaces``) offer is one function here: it opens
its inputs through the one loader, streams its output through the one writer
and returns what the callers report (the output path and small metadata).
The CLI commands and the interfaces are thin wrappers over these functions:
neither loads, selects or saves on its own.
"""
