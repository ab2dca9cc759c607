"""gr.map over files: hash every file under a directory with at most 8 reads in flight.
Reading and hashing a file blocks the thread, so each call goes through gr.blocking(),
which runs it on the offload pool while the task parks; gr.map keeps the results in the
order of the paths, and the first error cancels the rest.

Run it::

    python examples/map_files.py [directory]
"""

import hashlib
import os
import sys
import tempfile

import goroutines as gr


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def hash_file(path: str) -> tuple[str, str]:
    return path, gr.blocking(digest, path)


def tree(root: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


def main(root: str | None) -> None:
    if root is None:  # a demo tree of 20 small files
        demo = tempfile.TemporaryDirectory()
        root = demo.name
        for i in range(20):
            with open(os.path.join(root, f"file{i:02d}.txt"), "w") as f:
                f.write(f"contents {i}\n" * (i + 1))
    paths = tree(root)
    for path, h in gr.map(hash_file, paths, limit=8):
        print(os.path.relpath(path, root), h[:12])
    print(len(paths), "files")


if __name__ == "__main__":
    gr.run(main, sys.argv[1] if len(sys.argv) > 1 else None)
