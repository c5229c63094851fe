"""Pieces more than one strategy's chain uses."""
