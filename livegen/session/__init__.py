"""Sessions: crash-safe recording of what is heard (`recorder`), its wiring to the engine
(`wiring`), the event log that re-renders it (`replay`, `render`), and play's recording options
(`options`, light enough for the CLI's parser)."""
