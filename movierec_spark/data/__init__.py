"""Data: MovieLens releases, downloads, loading with explicit schemas, validation, titles, synthetic data."""
