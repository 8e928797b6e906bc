"""Execute the notebooks in ``notebooks/`` in place, with outputs normalised for committing.

    .venv/bin/python scripts/run_notebooks.py            # every notebook
    .venv/bin/python scripts/run_notebooks.py notebooks/02-langgraph-team-zero-code.ipynb

Each notebook runs in its own kernel (``python3``: this interpreter's ipykernel), working
directory ``notebooks/``, at most 120 s a cell. Outputs are made reproducible so regenerating
is not a diff of noise: no absolute paths, host names, timestamps or memory addresses in text,
no timing metadata, and PNG figures without their Software/date text chunks.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 120
# PNG chunks that carry text or time, not pixels.
_PNG_DROP = {b"tEXt", b"iTXt", b"zTXt", b"tIME"}
# The kernel inherits these: this interpreter's own kernelspec first (not a user-wide one), the
# inline backend for figures, a fixed hash seed so set/dict orders repeat.
KERNEL_ENV = {
    "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"),
    "JUPYTER_PREFER_ENV_PATH": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYTHONHASHSEED": "0",
}
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_TIMESTAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def execute(path: Path, workdir: Path | None = None) -> Any:
    """Run ``path`` in a fresh kernel (cwd ``workdir``, default its folder) and return the
    normalised notebook; raises ``nbclient.exceptions.CellExecutionError`` on a cell error."""
    nb = nbformat.read(path, as_version=4)
    saved = {key: os.environ.get(key) for key in KERNEL_ENV}
    os.environ.update(KERNEL_ENV)
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir or path.parent)}},
                       record_timing=False).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return normalise(nb)


def clean_png(data: bytes) -> bytes:
    """The PNG without text/time chunks (matplotlib writes its version as Software)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return data
    out, pos = [data[:8]], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if kind not in _PNG_DROP:
            out.append(data[pos:end])
        pos = end
    return b"".join(out)


def clean_text(text: str) -> str:
    for prefix in sorted({str(ROOT), str(NOTEBOOKS), sys.prefix, os.path.expanduser("~")},
                         key=len, reverse=True):
        if prefix and prefix != "/":
            text = text.replace(prefix, "<" + ("venv" if prefix == sys.prefix else "dir") + ">")
    host = socket.gethostname()
    if host and len(host) > 3:
        text = text.replace(host, "<host>")
    text = _ADDRESS.sub("0x…", text)
    return _TIMESTAMP.sub("<time>", text)


def _clean_value(value: Any) -> Any:
    if isinstance(value, list):
        return [clean_text(v) if isinstance(v, str) else v for v in value]
    return clean_text(value) if isinstance(value, str) else value


def _coalesce(outputs: list[Any]) -> list[Any]:
    """One stream output per run of prints: the kernel flushes stdout on a timer, so a loaded
    machine may split one cell's text into several messages."""
    merged: list[Any] = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and last is not None
                and last.get("output_type") == "stream" and last.get("name") == output.get("name")):
            text = output["text"] if isinstance(output["text"], str) else "".join(output["text"])
            before = last["text"] if isinstance(last["text"], str) else "".join(last["text"])
            last["text"] = before + text
        else:
            merged.append(output)
    return merged


def normalise(nb: Any) -> Any:
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if "outputs" in cell:
            cell.outputs = _coalesce(cell.outputs)
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _clean_value(output["text"])
            if "traceback" in output:
                output["traceback"] = [clean_text(line) for line in output["traceback"]]
            data = output.get("data", {})
            for mime in list(data):
                if mime == "image/png":
                    raw = clean_png(base64.b64decode(data[mime]))
                    data[mime] = base64.b64encode(raw).decode("ascii")
                elif mime.startswith("text/"):
                    data[mime] = _clean_value(data[mime])
            output.get("metadata", {}).pop("execution", None)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    args = parser.parse_args(argv)
    for path in args.paths or notebooks():
        started = time.monotonic()
        nb = execute(path.resolve())
        nbformat.write(nb, path)
        print(f"{path.name}: {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
