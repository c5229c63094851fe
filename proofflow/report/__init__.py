"""Reports over a proofflow database: terminal tables (rich), PNG plots (matplotlib) and a
Markdown report, plus the run summary the flows publish as Prefect artifacts.

Nothing here imports duckdb: the numbers come from proofflow.storage.metrics as plain rows.
"""

from proofflow.report.summary import summary_markdown, summary_table_rows

__all__ = ["summary_markdown", "summary_table_rows"]
