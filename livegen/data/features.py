"""Log-magnitude STFT features of a dataset, computed once and cached as a memory-mapped array.

Layout of a cache entry ``cache_dir/<key>/``: ``frames.f16`` (raw float16, ``[total_frames,
bins]``, C order), ``index.json`` (settings, shape and one row per example), ``report.json``
(skipped files and why). The latest run's report is also copied to ``cache_dir/report.json``.

The key hashes the example list (paths, sizes, mtimes, metadata), the STFT settings and
``FEATURES_VERSION``: touching a file or changing a setting makes a new entry; nothing else does.
Features are ``log(|STFT| + 1e-5)`` with librosa's scale (``np.abs(rfft(window * frame))``),
periodic Hann window, ``center=False``: frame m covers samples ``[m*hop, m*hop + n_fft)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from livegen.data import pitch as pitch_track
from livegen.data.progress import progress_bar
from livegen.dsp.stft import check_stft, stft_magnitude
from livegen.errors import ParameterError

FEATURES_VERSION = 2  # 2: rows carry cents and release_s
LOG_FLOOR = 1e-5
SILENCE_PEAK = 1e-4  # -80 dBFS: below this a file counts as silent and is skipped


def log_magnitude(y, *, n_fft: int, hop: int):
    """``log(|STFT| + 1e-5)`` of a mono signal as float32 ``[frames, n_fft // 2 + 1]``."""
    import numpy as np

    return np.log(stft_magnitude(y, n_fft=n_fft, hop=hop) + LOG_FLOOR).astype(np.float32, copy=False)


def release_frame(release_s: float | None, *, sample_rate: int, hop: int) -> int:
    """First frame whose start sample is at or after the note-off; -1 when there is none."""
    if release_s is None:
        return -1
    release_sample = round(release_s * sample_rate)
    return -(-release_sample // hop)


def load_audio(path: str, *, sample_rate: int, max_seconds: float | None = None):
    """Mono float32 at ``sample_rate`` (soundfile, else librosa/audioread for mp3 and the like)."""
    import numpy as np
    import soxr

    native, _, chunks = _native_chunks(path, max_seconds)
    parts = [c.mean(axis=1) for c in chunks]
    y = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if max_seconds is not None:
        y = y[: int(round(max_seconds * native))]
    if native != sample_rate and y.size:
        y = soxr.resample(y, native, sample_rate, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32), int(native)


def _cache_key(dataset, settings: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"version": FEATURES_VERSION, **settings}, sort_keys=True).encode())
    for ex in dataset:
        try:
            st = os.stat(ex.audio_path)
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)
        h.update(json.dumps([dataclasses.asdict(ex), stamp], sort_keys=True).encode())
    return h.hexdigest()[:20]


CHUNK_SECONDS = 60.0
"""Files are read, resampled and analysed this many seconds at a time: memory stays bounded
whatever their length (an hour of audio is as cheap to hold as a minute)."""
CLIP_LEVEL = 0.999
DC_CUTOFF_HZ = 10.0


def _native_chunks(path: str, max_seconds: float | None):
    """(native rate, channels, generator of float32 ``[n, channels]`` chunks) of an audio file.

    soundfile reads in blocks; formats it cannot read (mp3 on old libsndfile, ...) go through
    librosa/audioread in one piece.
    """
    import numpy as np
    import soundfile as sf

    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as first:
        try:
            import warnings

            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y, native = librosa.load(path, sr=None, mono=False, duration=max_seconds)
        except Exception as second:  # audioread raises many kinds; report both reasons
            raise OSError(f"soundfile: {first}; librosa: {str(second) or type(second).__name__}") from None
        y = np.atleast_2d(y).T.astype(np.float32)
        return int(native), y.shape[1], iter([y])

    native, channels = int(f.samplerate), int(f.channels)
    limit = -1 if max_seconds is None else int(round(max_seconds * native))

    def gen():
        with f:
            left = limit
            block = int(CHUNK_SECONDS * native)
            while left != 0:
                n = block if left < 0 else min(block, left)
                y = f.read(n, dtype="float32", always_2d=True)
                if not len(y):
                    break
                left = left - len(y) if left > 0 else left
                yield y

    return native, channels, gen()


def _example_features(path: str, *, sample_rate: int, n_fft: int, hop: int, max_seconds: float | None,
                      part: str, pitch: str | None = None, clean: bool = False):
    """Analyse one file chunk by chunk into ``part + ".f16"`` (and ``part + ".pitch"``).

    Returns ``(n_frames, native rate, None, info)``, or ``(None, None, why it was skipped, info)``.
    ``clean``: stereo and multichannel files are averaged (always), the DC offset is
    removed with a 10 Hz high-pass, clipped samples are counted into ``info``.
    """
    import numpy as np
    import soxr

    info: dict = {}
    try:
        native, channels, chunks = _native_chunks(path, max_seconds)
        info.update(native_rate=native, channels=channels)
        resampler = soxr.ResampleStream(native, sample_rate, 1, dtype="float32", quality="HQ") \
            if native != sample_rate else None
        hp = None
        if clean:
            from scipy.signal import butter, lfilter, lfilter_zi

            b, a = butter(1, DC_CUTOFF_HZ, btype="highpass", fs=native)
            hp = (b, a, None)
        carry = np.zeros(0, np.float32)
        peak, total_in, clipped, dc_sum = 0.0, 0, 0, 0.0
        n_frames = 0
        fh = open(part + ".f16", "wb")
        ph = open(part + ".pitch", "wb") if pitch else None
        try:
            for raw in chunks:
                x = raw.mean(axis=1) if raw.shape[1] > 1 else raw[:, 0]
                clipped += int(np.count_nonzero(np.abs(raw) >= CLIP_LEVEL))
                dc_sum += float(x.sum(dtype=np.float64))
                total_in += x.size
                if hp is not None:
                    b, a, zi = hp
                    if zi is None:
                        zi = lfilter_zi(b, a) * (x[0] if x.size else 0.0)
                    x, zi = lfilter(b, a, x, zi=zi)
                    hp = (b, a, zi)
                    x = x.astype(np.float32)
                y = resampler.resample_chunk(x) if resampler is not None else x
                if not np.all(np.isfinite(y)):
                    return None, None, "non-finite samples", info
                if y.size:
                    peak = max(peak, float(np.max(np.abs(y))))
                buf = np.concatenate([carry, y]) if carry.size else y
                n_frames, carry = _emit(buf, n_frames, n_fft, hop, fh, ph, sample_rate, pitch)
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if tail.size:
                    peak = max(peak, float(np.max(np.abs(tail))))
                carry = np.concatenate([carry, tail])
            if n_frames == 0 and carry.size < n_fft:
                carry = np.pad(carry, (0, n_fft - carry.size))
            n_frames, carry = _emit(carry, n_frames, n_fft, hop, fh, ph, sample_rate, pitch)
        finally:
            if fh is not None:
                fh.close()
            if ph is not None:
                ph.close()
    except Exception as exc:  # any unreadable file is reported, never fatal
        return None, None, f"unreadable: {exc}", info
    info.update(seconds=round(total_in / max(native, 1), 3), clipped_share=round(clipped / max(total_in * channels, 1), 6),
                dc_offset=round(dc_sum / max(total_in, 1), 6))
    if total_in == 0:
        return None, None, "empty", info
    if peak < SILENCE_PEAK:
        return None, None, "silent", info
    return n_frames, native, None, info


def _emit(buf, n_done, n_fft, hop, fh, ph, sample_rate, pitch):
    """Write the frames that fit in ``buf`` (which starts at frame ``n_done``'s first sample);
    return the new frame count and what is left of ``buf`` for the next chunk."""
    import numpy as np

    if buf.size < n_fft:
        return n_done, buf
    n = 1 + (buf.size - n_fft) // hop
    used = buf[:(n - 1) * hop + n_fft]
    feats = log_magnitude(used, n_fft=n_fft, hop=hop).astype(np.float16)
    fh.write(feats.tobytes())
    if pitch:
        track = pitch_track.frame_pitch(used, sample_rate=sample_rate, n_fft=n_fft, hop=hop, n_frames=n, method=pitch)
        ph.write(track.astype(np.float32).tobytes())
    return n_done + n, buf[n * hop:]


class FeatureSet:
    """Cached frames of a dataset: ``frames`` (memmap ``[total, bins]`` float16) + ``index`` rows.

    Each row (dict) has ``id, start, stop, pitch, velocity, cents, instrument, family, split, label,
    kind, release_frame, release_s, sample_rate``; ``pitch``/``velocity`` are -1 for excerpts,
    ``release_frame`` (first frame starting at or after the note-off) -1 when unknown or cut off,
    ``release_s`` (exact note-off time) -1.0 when unknown; ``pitch + cents / 100`` is the
    sounding MIDI pitch. ``split(name)`` gives a view sharing the same frames.
    """

    def __init__(self, path: Path, *, frames=None, rows=None, meta=None, report=None, cache_hit=False, pitch=None):
        import numpy as np

        self.path = Path(path)
        self.meta = meta if meta is not None else json.loads((self.path / "index.json").read_text())
        self.index: list[dict] = rows if rows is not None else self.meta["rows"]
        if frames is None:
            shape = tuple(self.meta["shape"])
            if shape[0] == 0:
                frames = np.zeros(shape, np.float16)
            else:
                frames = np.memmap(self.path / "frames.f16", dtype=np.float16, mode="r", shape=shape)
        self.frames = frames
        self.pitch = pitch if pitch is not None else self._open_pitch(shape=(self.frames.shape[0], 3))
        self.report = report if report is not None else json.loads((self.path / "report.json").read_text())
        self.cache_hit = cache_hit
        self.sample_rate = int(self.meta["sample_rate"])
        self.n_fft = int(self.meta["n_fft"])
        self.hop = int(self.meta["hop"])

    def _open_pitch(self, shape):
        """The per-frame ``[f0 Hz, voiced probability, loudness dBFS]`` memmap, or None when the
        features were computed without a pitch tracker."""
        import numpy as np

        if not self.meta.get("pitch"):
            return None
        if shape[0] == 0:
            return np.zeros(shape, np.float32)
        return np.memmap(self.path / "pitch.f32", dtype=np.float32, mode="r", shape=shape)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        return self.index[i]

    def __iter__(self):
        return iter(self.index)

    def __repr__(self) -> str:
        return f"FeatureSet({str(self.path)!r}, {len(self)} examples, {self.n_frames} frames)"

    @property
    def bins(self) -> int:
        return self.frames.shape[1]

    @property
    def n_frames(self) -> int:
        return sum(r["stop"] - r["start"] for r in self.index)

    def split(self, name: str) -> "FeatureSet":
        rows = [r for r in self.index if r["split"] == name]
        return FeatureSet(self.path, frames=self.frames, rows=rows, meta=self.meta, report=self.report,
                          cache_hit=self.cache_hit, pitch=self.pitch)

    def note_frames(self, i: int):
        """Frames of example ``i`` as float32 ``[n, bins]`` (a copy, safe to modify)."""
        import numpy as np

        r = self.index[i]
        return np.asarray(self.frames[r["start"]:r["stop"]], dtype=np.float32)

    def column(self, name: str):
        """One field of every row as a numpy array (e.g. ``column("pitch")``)."""
        import numpy as np

        return np.array([r[name] for r in self.index])

    def frame_table(self):
        """Per-frame ``(row, offset)`` int arrays over this set's frames, for random frame batches.

        ``frames[index[row]["start"] + offset]`` is the frame; ``offset`` is the frame number
        since the note's onset (compare with ``release_frame`` for time since note-off).
        """
        import numpy as np

        lengths = np.array([r["stop"] - r["start"] for r in self.index], dtype=np.int64)
        rows = np.repeat(np.arange(len(self.index), dtype=np.int64), lengths)
        firsts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        offsets = np.arange(int(lengths.sum()), dtype=np.int64) - firsts
        return rows, offsets


def compute_features(
    dataset,
    *,
    sample_rate: int = 24000,
    n_fft: int = 1024,
    hop: int = 128,
    cache_dir: str | os.PathLike,
    max_seconds: float | None = None,
    progress: bool = True,
    jobs: int = 1,
    pitch: str | None = None,
    clean: bool = False,
) -> FeatureSet:
    """Compute (or re-use) the features of ``dataset``; unreadable, empty and silent files are skipped.

    ``pitch`` (a tracker of `livegen.data.pitch`) also stores per-frame f0, voicing and loudness
    (``FeatureSet.pitch``); ``clean`` removes DC offsets (see `_example_features`). Each file is
    analysed in chunks into a part file and appended to the memory-mapped cache, so memory stays
    bounded on folders of any size.

    The result of a previous call with the same files and settings is re-used without reading
    any audio (``FeatureSet.cache_hit`` is then True).
    """
    import numpy as np

    n_fft, hop = check_stft(n_fft, hop)
    if sample_rate < 1000:
        raise ParameterError(f"sample rate {sample_rate} Hz is too low")
    if max_seconds is not None and max_seconds <= 0:
        raise ParameterError(f"max_seconds {max_seconds} must be > 0")
    if jobs < 1:
        raise ParameterError(f"jobs {jobs} must be >= 1")
    if not len(dataset):
        raise ParameterError("the dataset is empty: nothing to compute features of")
    settings = {"sample_rate": int(sample_rate), "n_fft": int(n_fft), "hop": int(hop),
                "max_seconds": max_seconds, "window": "hann-periodic", "center": False, "log_floor": LOG_FLOOR}
    if pitch:
        settings["pitch"] = f"{pitch}/{pitch_track.TRACKER_VERSION}"
    if clean:
        settings["clean"] = True
    cache_dir = Path(cache_dir)
    key = _cache_key(dataset, settings)
    entry = cache_dir / key
    if (entry / "index.json").is_file() and (entry / "report.json").is_file():
        _publish_report(entry, cache_dir)
        return FeatureSet(entry, cache_hit=True)

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    bins = n_fft // 2 + 1
    rows: list[dict] = []
    skipped: list[dict] = []
    total = 0
    started = time.perf_counter()
    task = functools.partial(_part_features, sample_rate=sample_rate, n_fft=n_fft, hop=hop, max_seconds=max_seconds,
                             pitch=pitch, clean=clean)
    paths = [(ex.audio_path, str(tmp / f"part{i}")) for i, ex in enumerate(dataset)]
    files: list[dict] = []
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(tmp / "frames.f16", "wb"))
        pout = stack.enter_context(open(tmp / "pitch.f32", "wb")) if pitch else None
        advance = stack.enter_context(progress_bar(progress, len(dataset), "computing features"))
        if jobs == 1:
            results = map(task, paths)
        else:
            import multiprocessing

            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(jobs))
            results = pool.imap(task, paths, chunksize=8)  # ordered: the output does not depend on jobs
        for ex, (part, (n, native, reason, info)) in zip(dataset, zip((p for _, p in paths), results)):
            advance()
            if n is None:
                skipped.append({"id": ex.id, "path": ex.audio_path, "reason": reason, **info})
                for suffix in (".f16", ".pitch"):
                    Path(part + suffix).unlink(missing_ok=True)
                continue
            files.append({"id": ex.id, **info})
            for suffix, handle in ((".f16", out), (".pitch", pout)):
                if handle is not None:
                    with open(part + suffix, "rb") as src:
                        shutil.copyfileobj(src, handle, 1 << 22)
                    os.unlink(part + suffix)
            rf = release_frame(ex.release_s, sample_rate=sample_rate, hop=hop) if ex.kind == "note" else -1
            rows.append({
                "id": ex.id, "start": total, "stop": total + n,
                "pitch": -1 if ex.pitch is None else int(ex.pitch),
                "velocity": -1 if ex.velocity is None else int(ex.velocity),
                "cents": float(getattr(ex, "cents", 0.0)),
                "instrument": ex.instrument, "family": ex.family, "split": ex.split, "label": ex.label,
                "kind": ex.kind, "release_frame": rf if rf < n else -1,
                "release_s": -1.0 if ex.release_s is None or ex.kind != "note" else float(ex.release_s),
                "sample_rate": native,
            })
            total += n
    elapsed = time.perf_counter() - started
    root = getattr(dataset, "root", None)
    meta = {"version": FEATURES_VERSION, "key": key, "dataset": str(Path(root).resolve()) if root else None,
            "layout": getattr(dataset, "layout", None), **settings, "bins": bins, "shape": [total, bins],
            "rows": rows}
    report = {"key": key, "examples": len(dataset), "computed": len(rows), "frames": total,
              "seconds": round(elapsed, 3), "frames_per_second": round(total / elapsed, 1) if elapsed > 0 else None,
              "skipped": skipped, "files": files}
    (tmp / "index.json").write_text(json.dumps(meta) + "\n")
    (tmp / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    try:
        os.replace(tmp, entry)
    except OSError:  # a concurrent run (e.g. another DDP rank) finished first: keep its identical result
        shutil.rmtree(tmp, ignore_errors=True)
    _publish_report(entry, cache_dir)
    _prune_stale(cache_dir, keep=entry, dataset=meta["dataset"], settings=settings)
    return FeatureSet(entry, cache_hit=False)


def _part_features(item, **kwargs):
    """`_example_features` of one (audio path, part path) pair (a picklable pool task)."""
    path, part = item
    return _example_features(path, part=part, **kwargs)


def _prune_stale(cache_dir: Path, *, keep: Path, dataset, settings: dict) -> None:
    """Delete entries of the same dataset folder and STFT settings whose files have changed since.

    Entries for other settings stay (they are still valid); a process still reading a deleted
    entry keeps its memory map (POSIX unlink semantics).
    """
    for other in cache_dir.iterdir():
        if other == keep or not (other / "index.json").is_file():
            continue
        try:
            meta = json.loads((other / "index.json").read_text())
        except (OSError, ValueError):
            continue
        same = meta.get("dataset") == dataset and all(meta.get(k) == v for k, v in settings.items())
        if same and meta.get("version", 0) <= FEATURES_VERSION:  # a newer livegen's entries stay
            shutil.rmtree(other, ignore_errors=True)


def _publish_report(entry: Path, cache_dir: Path) -> None:
    """Copy the entry's report to ``cache_dir/report.json``, the place users look first."""
    try:
        shutil.copyfile(entry / "report.json", cache_dir / "report.json")
    except OSError:  # a read-only cache still serves its features
        pass
