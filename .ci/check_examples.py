"""mypy over the documented examples and the demo, against the package's stubs.

The examples are the README's ```python blocks and the ``Example::`` blocks of the
docstrings of goroutines and of every name in goroutines.__all__ (and their members),
read from the installed package. Each is written to its own module under build/examples/,
after declarations of the free names it uses (FREE_NAMES), and mypy checks them together
with src/goroutines/__main__.py, with the settings of [tool.mypy] in pyproject.toml.

Run from anywhere: python .ci/check_examples.py
"""

import ast
import builtins
import inspect
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import goroutines as gr

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "examples"

# The names examples use without defining them, declared with the type they stand for.
# An example that uses a new one fails below until it is added here.
FREE_NAMES = {
    "ch": "ch: gr.Chan[str]",
    "cond": "cond: gr.Cond",
    "counter": "counter: int",
    "data": "data: gr.Chan[bytes]",
    "dropped": "dropped: int",
    "fd": "fd: int",
    "fetch": "def fetch(url: str, wg: gr.WaitGroup | None = None) -> bytes: return b''",
    "init_config": "def init_config() -> None: ...",
    "item": "item: str",
    "jobs": "jobs: gr.Chan[str]",
    "key": "key: str",
    "load_config": "def load_config(path: str) -> None: ...",
    "mu": "mu: gr.Mutex",
    "once": "once: gr.Once",
    "os": "import os",
    "path": "path: str",
    "paths": "paths: list[str]",
    "payload": "payload: bytes",
    "poll_until": "def poll_until(done: gr.Chan[None]) -> None: ...",
    "q": "q: gr.Queue[str]",
    "queue": "queue: list[str]",
    "quit": "quit: gr.Chan[None]",
    "ready": "ready: bool",
    "report": "def report(t: gr.Task[int]) -> None: ...",
    "results": "results: gr.Chan[int]",
    "rw": "rw: gr.RWMutex",
    "sem": "sem: gr.Semaphore",
    "setup": "def setup() -> None: ...",
    "signal": "import signal",
    "sigs": "sigs: gr.Chan[object]",
    "sock": "import socket as _socket\nsock: _socket.socket",
    "stop": "stop: gr.Event",
    "t": "t: gr.Task[int]",
    "table": "table: dict[str, int]",
    "tasks": "tasks: list[gr.Task[int]]",
    "tg": "tg: gr.TaskGroup",
    "time": "import time",
    "url": "url: str",
    "urls": "urls: list[str]",
    "value": "value: int",
    "work": "def work() -> None: ...",
}


# Event's example starts a task with `lambda: (setup(), ready.set())`, a tuple of Nones.
CONFIG = '# mypy: disable-error-code="func-returns-value"'


def readme_examples():
    text = (ROOT / "README.md").read_text()
    for i, m in enumerate(re.finditer(r"^```python\n(.*?)^```", text, re.M | re.S), 1):
        yield f"README.md, python block {i}", m.group(1)


def literal_blocks(doc):
    """The reST literal blocks (after a line ending in '::') of a docstring."""
    lines = inspect.cleandoc(doc).splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].rstrip().endswith("::"):
            i += 1
            continue
        j = i + 1
        block = []
        while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
            block.append(lines[j])
            j += 1
        yield textwrap.dedent("\n".join(block)).strip() + "\n"
        i = j


def docstring_examples():
    documented = [("goroutines", gr)]
    for name in gr.__all__:
        obj = getattr(gr, name)
        documented.append((f"goroutines.{name}", obj))
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_"):
                    documented.append((f"goroutines.{name}.{attr}", member))
    for where, obj in documented:
        doc = getattr(obj, "__doc__", None)
        if isinstance(doc, str):
            for i, block in enumerate(literal_blocks(doc), 1):
                yield f"the docstring of {where}, example {i}", block


def free_names(source):
    """Names the code reads but never binds (builtins aside, unless in FREE_NAMES)."""
    tree = ast.parse(source)
    # `x += 1` reads x: its target binds nothing that was not bound before.
    augmented = {id(n.target) for n in ast.walk(tree) if isinstance(n, ast.AugAssign)}
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) or id(node) in augmented:
                loaded.add(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return (loaded - bound) - (set(dir(builtins)) - set(FREE_NAMES))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    files, unknown = [], []
    examples = list(readme_examples()) + list(docstring_examples())
    for k, (where, source) in enumerate(examples, 1):
        names = sorted(free_names(source) - {"gr"})  # the header imports gr
        unknown += [f"{where}: {n}" for n in names if n not in FREE_NAMES]
        header = [f"# {where}", CONFIG, "import goroutines as gr", ""]
        header += [FREE_NAMES[n] for n in names if n in FREE_NAMES]
        path = OUT / f"example_{k:02d}.py"
        path.write_text("\n".join(header) + "\n\n" + source)
        files.append(str(path))
    if unknown:
        sys.exit("examples use names that FREE_NAMES does not declare:\n  " + "\n  ".join(unknown))
    files.append(str(ROOT / "src" / "goroutines" / "__main__.py"))
    print(f"mypy: {len(examples)} examples (build/examples/) and src/goroutines/__main__.py")
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *files]
    sys.exit(subprocess.run(cmd, cwd=ROOT).returncode)


if __name__ == "__main__":
    main()
