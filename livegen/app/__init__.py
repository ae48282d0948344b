"""The application: what composes engine, sources, controls and session (the factory from a
model directory to an engine with its sources)."""
