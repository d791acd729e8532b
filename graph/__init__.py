"""The routing graph: state schemas, the runtime context type and the builder."""
