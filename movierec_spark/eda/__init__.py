"""Exploratory data analysis: data-quality and distribution aggregates, and the report."""
