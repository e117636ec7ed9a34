"""TensorFlow, imported when first used: `from trainer.util.lazy import tf`.

Importing TensorFlow takes seconds. The modules that a command's flags come from (the
registries of networks, optimizers, scaling and heads; the data's readers) use it only inside
their functions, so they name it through `tf` below: building a parser and printing `--help`
then loads no TensorFlow (a test runs every command's `--help` and checks `sys.modules`), and
the first `tf.<name>` of a running command imports it. Such a module has
`from __future__ import annotations`, so that its `tf.Tensor` annotations are not evaluated.
"""

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A module imported on its first attribute: `LazyModule("tensorflow").constant(1.0)`."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)  # after the first time, a sys.modules lookup

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._module(), attribute)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r})"


tf: Any = LazyModule("tensorflow")
