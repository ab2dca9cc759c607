"""Test dependencies that do not install on free-threaded CPython 3.13."""
import importlib
import sys
import sysconfig

import pytest

FREE_THREADED_313 = (
    bool(sysconfig.get_config_var("Py_GIL_DISABLED")) and sys.version_info[:2] == (3, 13)
)


def require(name, why):
    """Import module `name`. On free-threaded CPython 3.13, where it does not install (`why`),
    skip the calling test, or module, instead; anywhere else a missing module is an error."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if FREE_THREADED_313:
            pytest.skip(f"{name} does not install on free-threaded CPython 3.13 ({why}): "
                        "these tests run on the GIL build", allow_module_level=True)
        raise
