"""Builds and installs the netcell Python package from the source tree, offline:

    /usr/bin/python3 -m pip install --no-build-isolation ./python

The extension netcell._netcell is built by netcell's own CMake build (target netcell_python,
python/CMakeLists.txt) for the interpreter running this script, linking netcell's static
library, so the installed module needs no libnetcell.so. NETCELL_CMAKE_BUILD_DIR names the build
directory: an existing one is reused (reconfigured for this interpreter), a new one is made
without netcell's tests and benchmarks; by default a fresh one under setuptools' build_temp.
NETCELL_SOURCE_DIR names netcell's source tree when this directory is a copy (default: the
parent of this directory). Needs cmake, ninja and netcell's build dependencies (scripts/dev
setup), pybind11-dev and python3-dev; nothing is fetched.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("NETCELL_SOURCE_DIR") or HERE.parent).resolve()


def project_version():
    for line in (SOURCE_DIR / "CMakeLists.txt").read_text().splitlines():
        if line.startswith("project(netcell VERSION "):
            return line.split()[2]
    raise RuntimeError("no project(netcell VERSION ...) in CMakeLists.txt")


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = Path(os.environ.get("NETCELL_CMAKE_BUILD_DIR")
                         or Path(self.build_temp) / "cmake").resolve()
        fresh = not (build_dir / "CMakeCache.txt").exists()
        build_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cmake", "-S", str(SOURCE_DIR), "-B", str(build_dir), "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=Release", "-DNETCELL_BUILD_PYTHON=ON",
                        f"-DPython3_EXECUTABLE={sys.executable}"]
                       + (["-DNETCELL_BUILD_TESTS=OFF", "-DNETCELL_BUILD_BENCHMARKS=OFF"]
                          if fresh else []),
                       check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "netcell_python"],
                       check=True)
        built = build_dir / "python" / "netcell" / ("_netcell" + sysconfig.get_config_var("EXT_SUFFIX"))
        if not built.exists():
            raise RuntimeError(f"cmake built no {built}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, target)


setup(
    name="netcell",
    version=project_version(),
    description="netcell's network namespace lifecycle API (NamespaceManager) from Python",
    python_requires=">=3.9",
    packages=["netcell"],
    package_data={"netcell": ["py.typed", "*.pyi"]},
    ext_modules=[Extension("netcell._netcell", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
