"""A discrete-event simulator of the cluster that drives the real placement and queue policies."""
