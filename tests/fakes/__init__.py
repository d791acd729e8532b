"""Fakes at the network seam."""
