"""Continuation and autonomous generation: a block GRU over spectral frames, steered by a style latent."""

from livegen.continuation.io import (
    default_continuation_path,
    is_continuation_model,
    load_continuation,
    save_continuation,
)

__all__ = ["default_continuation_path", "is_continuation_model", "load_continuation", "save_continuation"]
