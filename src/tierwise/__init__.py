"""tierwise: decide where each piece of your AI should live — device, edge or cloud — and run it."""

__version__ = "0.1.0"
