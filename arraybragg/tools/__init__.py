"""Developer tools: pixel-trace diffing and side-by-side render comparison.

They run renderers as subprocesses or read their text output, so they never import the engine.
"""
