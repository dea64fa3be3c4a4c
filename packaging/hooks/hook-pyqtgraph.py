# ruff: noqa
# Overrides pyinstaller-hooks-contrib's hook-pyqtgraph (a hook path of ours takes precedence):
# the same collection, without probing pyqtgraph.opengl and .jupyter (PyOpenGL, jupyter_rfb). The bundle
# excludes both on purpose, and the probes printed "Failed to collect submodules for
# 'pyqtgraph.opengl'" on every build.
from PyInstaller.utils.hooks import collect_data_files, collect_submodules

datas = collect_data_files("pyqtgraph", excludes=["**/examples/*"])
all_imports = collect_submodules(
    "pyqtgraph", filter=lambda name: not name.startswith(("pyqtgraph.examples", "pyqtgraph.opengl", "pyqtgraph.jupyter"))
)
hiddenimports = [name for name in all_imports if "Template" in name]
hiddenimports += ["pyqtgraph.multiprocess.bootstrap"]

try:
    from PyInstaller.utils.hooks.qt import exclude_extraneous_qt_bindings
except ImportError:
    pass
else:
    excludedimports = exclude_extraneous_qt_bindings(hook_name="hook-pyqtgraph", qt_bindings_order=None)
