"""The sound server: the engine rendering in the process that owns the audio stream, and its client.

`process` is the server's side, `client` the app's (`RemoteEngine`, `SoundServer`), `shm` the
shared memory between them and `wire` the event records on it; `factory` builds the engine a
model directory plays with (its sources), for the server, `livegen render` and the benches.
"""
