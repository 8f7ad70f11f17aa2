"""Floor 1, the ground: configuration, paths, time (periods, deadlines) and the domain's words.

Everything else may import this; it imports nothing of ours.
"""
