"""The task classifier: rules, language, a learned model on sentence embeddings, an LLM judge."""
