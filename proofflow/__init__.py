"""proofflow: resumable generate → verify → repair and draft → sketch → prove pipelines."""

__version__ = "0.1.0"
