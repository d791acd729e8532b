"""The runtime context every node receives: the router's parts, built from Settings."""

from cluster.runtime import RouterRuntime, build_runtime

RouterContext = RouterRuntime

__all__ = ["RouterContext", "build_runtime"]
