"""gql-jobs: a GraphQL and REST API over RQ jobs.

Public API for task authors: `task` declares a function as an enqueueable task, and
`report_progress` records how far a running task got.
"""

from gql_jobs.progress import report_progress
from gql_jobs.tasks import task

__all__ = ["report_progress", "task"]
__version__ = "0.2.0"
