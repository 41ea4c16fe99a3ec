#!/usr/bin/env python3
"""Lists functions in src/ longer than a limit (default 100 lines), and files over 700 lines.

A rough reader of Rust: a function starts at a line holding `fn name` and ends at the line
whose closing brace returns to the indentation of its start. Good enough for formatted code.
"""
import re
import sys
from pathlib import Path

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 100
FN = re.compile(r"^(\s*)(pub(\([a-z]+\))? )?(async )?(const )?(unsafe )?fn (\w+)")

found = False
for path in sorted(Path("src").rglob("*.rs")):
    lines = path.read_text().splitlines()
    if len(lines) > 700:
        print(f"{path}: {len(lines)} lines (over 700)")
        found = True
    for number, line in enumerate(lines):
        match = FN.match(line)
        if not match or line.rstrip().endswith(";"):
            continue
        indent = match.group(1)
        for end in range(number + 1, len(lines)):
            if lines[end].startswith(indent + "}") and not lines[end].startswith(indent + " "):
                length = end - number + 1
                if length > LIMIT:
                    print(f"{path}:{number + 1}: fn {match.group(7)}: {length} lines")
                    found = True
                break
sys.exit(1 if found else 0)
