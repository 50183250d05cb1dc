"""Evaluation: train/test splits and the rating and ranking metrics."""
