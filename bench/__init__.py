"""Benchmarks (not tests): each module measures a figure next to a baseline taken in the same run."""
