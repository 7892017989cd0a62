"""trx-nipype: memory-mapped TRX tractograms for Nipype pipelines."""

__version__ = "0.1.0"
