"""Control sources: OSC (`osc`) and MIDI (`midi`, `mapping`) turning messages into engine events.

Everything here codes against the engine's control protocol only: `params` (read-only),
`post(event)`, `status()` and `add_listener(callback)`. The parsers (`oscwire`,
`mapping`) are pure layers, bytes in and events out, so they can be fuzzed.
"""
