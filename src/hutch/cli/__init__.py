"""The `hutch` command: podman's command line over the engine and image layers.

It parses flags, prints tables, JSON and progress, and holds no logic of its own (see ../shared/DESIGN.md).
"""
