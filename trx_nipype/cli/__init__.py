"""The ``trx-nipype`` command line (see :mod:`trx_nipype.cli.main`)."""
