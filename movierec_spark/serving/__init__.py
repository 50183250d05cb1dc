"""Serving: recommendations for people (fold-in, top-N, similar movies, explanations, the notebook app)."""
