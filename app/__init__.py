"""The composition root: builds the router's parts from settings and picks every backend."""
