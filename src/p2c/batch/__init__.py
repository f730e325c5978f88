"""p2c.batch: many videos and photos at once, spread over the workers of a Ray cluster (``p2c-batch``).

Ray is an optional dependency (``pip install "p2c[cluster]"``), imported only when a batch runs.
"""

from p2c.batch.config import ClusterConfig, WorkerSettings
from p2c.batch.run import run_batch
from p2c.batch.summary import SUMMARY_NAME, BatchSummary, FileRecord

__all__ = ["SUMMARY_NAME", "BatchSummary", "ClusterConfig", "FileRecord", "WorkerSettings", "run_batch"]
