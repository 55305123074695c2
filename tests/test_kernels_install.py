"""The CUDA sources ship inside the installed package, though they live in the top-level kernels/.

setup.cfg maps the package ``tinyalex.kernels`` onto the folder ``kernels/``. The slow test builds
a real wheel, installs it (non-editable) into a fresh virtual environment and runs the emulated
kernels and the NVRTC check from there, far from the checkout.
"""

import configparser
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tinyalex

REPO_ROOT = Path(tinyalex.__file__).resolve().parent.parent


def test_setup_cfg_lists_every_package():
    """setup.cfg lists packages by hand (find: cannot map kernels/); none may be forgotten."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    on_disk = {
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for init in (REPO_ROOT / "tinyalex").rglob("__init__.py")
    }
    assert listed == on_disk | {"tinyalex.kernels"}, "update [options] packages in setup.cfg"
    assert "tinyalex.kernels = kernels" in config["options"]["package_dir"]


INSTALLED_CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    import tinyalex
    from tinyalex.cuda import nvrtc, ops
    from tinyalex.cuda.sources import kernel_dir

    site = Path(sys.argv[1]).resolve()
    assert site in Path(tinyalex.__file__).resolve().parents, tinyalex.__file__
    assert kernel_dir().resolve() == site / "tinyalex" / "kernels", kernel_dir()
    x = np.arange(24, dtype=np.float32).reshape(1, 6, 2, 2)
    out, scale = ops.for_device("emulate").lrn_forward(x, 5, 2.0, 1e-3, 0.75)
    assert np.allclose(out, x * scale ** -0.75)
    pooled, argmax = ops.for_device("emulate").maxpool_forward(x, 2, 1)
    assert (argmax == 3).all() and (pooled == x[:, :, 1:, 1:]).all()
    assert nvrtc.main(["--arch", "sm_80"]) == 0
    print("installed kernels OK")
""")


@pytest.mark.slow
def test_non_editable_install_finds_the_kernels(tmp_path):
    # Build from a copy, so that the build's egg-info and build/ never land in the checkout.
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing from the checkout
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist),
                    str(source)], check=True, timeout=300, env=env)
    (wheel,) = dist.glob("tinyalex-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "-q", str(wheel)], check=True, timeout=300, env=env)
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    # numpy (and the NVRTC wheel) from this environment, as plain path entries: the .pth
    # files there (an editable tinyalex, say) are not processed, so only the wheel's copy counts.
    dependencies = Path(np.__file__).resolve().parent.parent
    (site / "dependencies.pth").write_text(f"{dependencies}\n")
    env["TINYALEX_EMULATOR_CACHE"] = str(tmp_path / "emulator-cache")  # build from the wheel
    result = subprocess.run([str(python), "-c", INSTALLED_CHECK, str(site)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "installed kernels OK" in result.stdout
