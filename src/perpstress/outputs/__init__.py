"""Layer 6: what a run leaves behind (run directories, Parquet tables, summaries, reports)."""
