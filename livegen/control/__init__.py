"""Control sources: OSC (`osc`) and MIDI (`midi`, `mapping`) turning messages into engine events.

Everything here codes against the engine's control interface only (`target.ControlTarget`):
`params` (read-only), `post(event)`, `status()`, listeners, and the few requests the OSC address
space makes of it. The parsers (`oscwire`, `mapping`) are pure layers, bytes in and events out,
so they can be fuzzed; `oscaddress` is the OSC address table, plain data the UI reads too.
"""
