"""Metrics: pure functions of labels and scores; bootstrap intervals resample patients."""
