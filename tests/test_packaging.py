"""A wheel carries the bundled models, and an installed copy finds them without the checkout."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs a wheel

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_the_bundled_models_where_livegen_finds_them(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(REPO)], check=True, capture_output=True, text=True, timeout=300)
    wheel = next(wheels.glob("livegen-*.whl"))
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    found = subprocess.run([str(python), "-c", "from livegen.paths import bundled_model_dir as d; "
                            "print(d('default')); print(d('continuation'))"],
                           cwd=tmp_path, check=True, capture_output=True, text=True).stdout.split()
    for path, name in zip(found, ("default", "continuation")):
        path = Path(path)
        assert path == env_dir / "share" / "livegen" / "models" / name
        assert (path / "config.json").read_bytes() == (REPO / "models" / name / "config.json").read_bytes()
        assert (path / "weights.safetensors").stat().st_size == (REPO / "models" / name / "weights.safetensors").stat().st_size
