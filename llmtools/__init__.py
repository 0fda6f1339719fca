"""llmtools: small Unix commands for LLMs that exchange JSON-lines message stacks."""

# A literal, not importlib.metadata: `--version` must not pay for a metadata scan.
__version__ = "0.1.0"
