"""Storage: the only package that imports duckdb."""
