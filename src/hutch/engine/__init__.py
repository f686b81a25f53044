"""The engine: containers from images, their specs, state and lifecycle, on the runtime library."""
