"""One widget per file: the pad, sliders, meters, waterfall, presets and status line."""

from livegen.tui.widgets.input_meter import InputMeter
from livegen.tui.widgets.meter import OutputMeter
from livegen.tui.widgets.presets import PresetBar
from livegen.tui.widgets.slider import ParamSlider
from livegen.tui.widgets.status import StatusLine
from livegen.tui.widgets.waterfall import Waterfall
from livegen.tui.widgets.xy_pad import XYPad

__all__ = ["InputMeter", "OutputMeter", "ParamSlider", "PresetBar", "StatusLine", "Waterfall", "XYPad"]
