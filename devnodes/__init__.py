"""Local stand-ins for GB10 nodes: real vLLM servers on the CPU, in their own environment."""
