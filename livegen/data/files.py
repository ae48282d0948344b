"""Checks of the files a command reads and of the files and folders it will write, made before it
works, so that a long render, training run or take is never lost to a path that cannot be
written at its end."""

from __future__ import annotations

import os

from livegen.errors import ParameterError


def _nearest_existing(path: str) -> str:
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing


def check_input_file(path, what: str) -> None:
    """`path` is a file this process can read; else ParameterError naming `what` (the option or role)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ParameterError(f"{what} {path} is a folder: give an audio file")
    if not os.path.isfile(path):
        raise ParameterError(f"{what} {path}: no such file; give the path of an audio file (WAV, FLAC, ...)")
    if not os.access(path, os.R_OK):
        raise ParameterError(f"{what} {path} cannot be read (permission denied): check its permissions")


def check_output_folder(path, option: str) -> None:
    """`path` is a folder that exists or can be made and written into; else ParameterError naming `option`."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ParameterError(f"{option} {path}: that is a file, not a folder; give a folder (it is made if missing)")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise ParameterError(f"{option} {path}: {existing} is a file, not a folder; give a path under a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ParameterError(f"{option} {path}: {existing} cannot be written; give a folder you can write to")


def check_output_file(path, option: str, *, example: str = "out.wav") -> None:
    """`path` names a file that can be written: not a folder, in a folder that exists and is writable."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ParameterError(f"{option} {path}: that is a folder; give a file name, e.g. {os.path.join(path, example)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ParameterError(f"{option} {path}: the folder {folder} does not exist; make it first or write elsewhere")
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ParameterError(f"{option} {path}: cannot be written there; give a file in a folder you can write to")


def check_not_an_input(path, option: str, inputs: dict) -> None:
    """`path` (to be written) is none of `inputs` ({what it is: its path or None}): a render over its
    own take or a resynth over its source would destroy what the user made. Where both exist the
    files themselves are compared, so a hard link of an input is caught too."""
    target = os.path.realpath(os.fspath(path))
    for what, source in inputs.items():
        if source is None:
            continue
        if os.path.exists(path) and os.path.exists(source):
            same = os.path.samefile(path, source)
        else:
            same = os.path.realpath(os.fspath(source)) == target
        if same:
            raise ParameterError(f"{option} {path} is {what}: writing it would destroy it; give another file name")


def check_audio_output(path, option: str, *, subtype: str = "FLOAT", subtype_option: str | None = "--subtype") -> None:
    """`check_output_file`, and soundfile can write `subtype` in the format the name's extension
    asks for (`subtype_option`: the option that chose it, None where the command has none)."""
    import soundfile as sf

    check_output_file(path, option)
    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").upper()
    formats = sf.available_formats()
    if ext not in formats:
        raise ParameterError(f"{option} {path}: the extension {'.' + ext.lower() if ext else '(none)'} names no audio "
                             "format soundfile writes; end the name with .wav (or .flac, .ogg)")
    if subtype.upper() not in sf.available_subtypes(ext) or not sf.check_format(ext, subtype.upper()):
        good = ", ".join(s for s in sf.available_subtypes(ext) if sf.check_format(ext, s))
        if subtype_option is None:
            raise ParameterError(f"{option} {path}: {ext} files cannot hold {subtype} samples; end the name with .wav")
        raise ParameterError(f"{subtype_option} {subtype}: {ext} files cannot hold it; choose one of {good}")
