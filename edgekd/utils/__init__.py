"""Small helpers shared by every stage (no torch at import time)."""
