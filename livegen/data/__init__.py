"""Training data: render GM SoundFont notes, open downloaded datasets, cache STFT features.

- ``livegen.data.gm.render_gm_dataset``: NSynth-format notes from a SoundFont (``livegen dataset gm``).
- ``livegen.data.datasets.open_dataset``: NSynth, gm output, MAESTRO, GTZAN or any audio folder
  as a list of ``Example`` records with splits.
- ``livegen.data.features.compute_features``: log-magnitude STFT frames in a cached float16
  memmap (``FeatureSet``), computed once per file list and STFT setting.
- ``livegen.data.midi.read_midi_notes``: the notes of a MIDI file (MAESTRO's pairs).

Submodules import numpy/soundfile only inside functions, so importing them stays cheap.
"""
