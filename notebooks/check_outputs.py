"""Compares the text that executed notebooks print with the committed outputs.

    python3 notebooks/check_outputs.py COMMITTED_DIR EXECUTED_DIR [NAME.ipynb ...]

For every notebook in COMMITTED_DIR (or the ones named), the text outputs of each code cell (stream
output, and the text/plain of results that are not images) are normalised and
compared with those of the same notebook in EXECUTED_DIR; any difference is
printed as a unified diff and the exit status is 1. Images are not compared.

What changes from run to run is left out, so that only numbers that follow from
the code and the data are compared:
  - cells tagged ``nocheck`` (cell metadata "tags") are skipped entirely: the
    notebooks tag the cells that print differentially private (noised) numbers
    or day-by-day series, whose calendar days depend on when the demo ran;
  - dates and times (ISO 8601), hexadecimal strings of 16 digits or more
    (hashes, ids) and API keys are replaced by placeholders;
  - every number is rounded to 6 significant digits (and -0 is 0).
"""

import difflib
import json
import os
import re
import sys

NOCHECK = "nocheck"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_HEX = re.compile(r"(?<![\w.])(?=[0-9a-f]*[a-f])[0-9a-f]{16,}(?![\w.])")
_KEY = re.compile(r"\blift_[A-Za-z0-9_]{8,}")
_NUM = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w|\.\d)")


def _round(m):
    s = m.group(0)
    try:
        v = float(s)
    except ValueError:
        return s
    if v == 0:
        return "0"
    out = f"{v:.6g}"
    if out.startswith("+"):
        out = out[1:]
    return out


def normalise(text):
    """The comparable form of one output text."""
    text = _KEY.sub("<key>", text)
    text = _DATE.sub("<date>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUM.sub(_round, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def cell_texts(path):
    """(label, normalised text) of every checked code cell of a notebook."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    out = []
    n = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        n += 1
        if NOCHECK in cell.get("metadata", {}).get("tags", []):
            continue
        parts = []
        for o in cell.get("outputs", []):
            kind = o.get("output_type")
            if kind == "stream":
                parts.append(_join(o.get("text", "")))
            elif kind in ("execute_result", "display_data"):
                data = o.get("data", {})
                if any(k.startswith("image/") for k in data):
                    continue
                if "text/plain" in data:
                    parts.append(_join(data["text/plain"]))
            elif kind == "error":
                parts.append(f"ERROR {o.get('ename')}: {o.get('evalue')}")
        first = _join(cell.get("source", "")).strip().splitlines()
        label = f"cell {n}: {first[0][:60] if first else ''}"
        out.append((label, normalise("\n".join(parts))))
    return out


def _join(v):
    return "".join(v) if isinstance(v, list) else v


def compare(committed, executed):
    """The diff lines between two notebooks' checked outputs (empty when equal)."""
    a, b = cell_texts(committed), cell_texts(executed)
    lines = []
    for i in range(max(len(a), len(b))):
        la, ta = a[i] if i < len(a) else ("(no cell)", "")
        lb, tb = b[i] if i < len(b) else ("(no cell)", "")
        if ta != tb:
            lines.extend(difflib.unified_diff(ta.splitlines(), tb.splitlines(), f"committed {la}", f"executed {lb}", lineterm=""))
    return lines


def main(argv):
    if len(argv) < 3:
        print("usage: " + __doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    committed, executed = argv[1], argv[2]
    names = argv[3:] or sorted(n for n in os.listdir(committed) if n.endswith(".ipynb"))
    if not names:
        print(f"no notebooks in {committed}", file=sys.stderr)
        return 2
    failed = False
    for name in names:
        other = os.path.join(executed, name)
        if not os.path.exists(other):
            print(f"{name}: not executed (no {other})", file=sys.stderr)
            failed = True
            continue
        diff = compare(os.path.join(committed, name), other)
        if diff:
            failed = True
            print(f"{name}: the printed numbers differ from the committed outputs (rerun notebooks/run.sh --write if the change is intended):")
            print("\n".join(diff))
        else:
            print(f"{name}: outputs match")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
