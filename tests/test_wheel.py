"""The package is the product: a wheel, installed into a fresh virtualenv, runs the main job from an
empty directory with nothing of the checkout in reach (profiles, transcripts and gates are package
data), keeps its cache in the user's cache directory, and lists its boards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import ROOT


def test_the_wheel_runs_the_main_job_from_an_empty_directory(tmp_path: Path) -> None:
    dist, venv, empty, cache = tmp_path / "dist", tmp_path / "venv", tmp_path / "empty", tmp_path / "cache"
    empty.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(dist), str(ROOT)], check=True, cwd=tmp_path, timeout=300)
    wheel = next(dist.glob("talos_sbc_harness-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                   timeout=600)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HIL_CACHE_DIR=str(cache), PATH=f"{venv / 'bin'}:{env['PATH']}")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=empty, env=env, capture_output=True, text=True, timeout=300)

    where = run("python", "-c", "import harness; print(harness.__file__)")
    assert where.stdout.startswith(str(venv)), f"harness must come from the wheel: {where.stdout}{where.stderr}"
    job = run("pytest", "-p", "no:cacheprovider", "--board", "nanopi-m6", "--bench", "sim", "-m", "bootloader",
              "--report-dir", "out")
    assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-2000:]
    assert "3 passed" in job.stdout and "gate verdicts: 3 pass" in job.stdout, job.stdout[-2000:]
    assert (empty / "out" / "report.html").is_file() and (empty / "out" / "console.log").is_file()
    assert list((cache / "sim").glob("*.img")), "the virtual board's default image is cached in the cache directory"
    assert sorted(p.name for p in empty.iterdir()) == ["out"], "nothing else was written where the user stands"
    boards = run("hil", "boards")
    assert boards.returncode == 0 and "nanopi-m6" in boards.stdout and "rpi5-cm5" in boards.stdout, boards
