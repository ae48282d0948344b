"""The application: composes the sound server, the controls and the session for `livegen play`."""
