"""The parameters a continuation model adds to the engine's registry (light: the UI reads them too)."""

from __future__ import annotations

from livegen.engine.params import ParamSpec


def continuation_param_specs(temperature: float = 0.7):
    """The parameters a continuation model adds to the engine's registry."""
    return [
        ParamSpec("temperature", 0.0, 1.5, round(min(max(temperature, 0.0), 1.5), 4), "", 0.0,
                  description="how freely the continuation model samples (0 = its most likely block)"),
        ParamSpec("follow", 0.0, 1.0, 1.0, "", 0.0,
                  description="how closely the continuation model follows live input (0 = ignores it)"),
        ParamSpec("return", 0, 1, 0, "", 0.0, integer=True,
                  description="trigger: back to the state where the seed ended (drift walk reset)"),
    ]
