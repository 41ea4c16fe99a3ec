#!/usr/bin/env python3
"""Checks that the crate's modules depend on each other one way.

Reads every `crate::…` and `super::…` path in src/ (imports and inline paths, comments left
out) and draws an edge from the module of the file to the module the path names. Then:

- the top-level modules must follow the layer order below (a module may use only modules
  of the layers before its own);
- inside each folder, the sibling modules must have no cycle (a child using its parent's
  own items, `super::PipelineError` say, is how Rust modules share and is not counted).

Prints the graph of each folder with more than one module, and every violation; exits 1 if any.
Run it from the repository root: `python3 scripts/module-deps.py`.
"""
import re
import sys
from collections import defaultdict
from pathlib import Path

LAYERS = [
    {"contract"},
    {"telemetry"},
    {"storage", "parquet_io"},
    {"quality"},
    {"pipeline"},
    {"sweep"},
    {"sample"},
    {"functions"},
    {"cli"},
]
LAYER_OF = {module: index for index, layer in enumerate(LAYERS) for module in layer}

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::\w+)*)::\{([^;]*)\};", re.S)


def module_of(path: Path) -> tuple:
    parts = list(path.relative_to("src").with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    return "\n".join(line.split("//", 1)[0] if "//" in line else line for line in text.splitlines())


def resolve(module: tuple, is_dir_module: bool, root: str, rest: list, modules: set) -> tuple:
    if root == "crate":
        base = ()
    else:
        # `super` in a file `a/b.rs` (module a::b) is `a`; in `a/b/mod.rs` (module a::b) it is `a`.
        base = module[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    target = base
    for part in rest:
        if base + (part,) in modules or target + (part,) in modules:
            target = target + (part,)
        else:
            break
    return target


def edges_of(path: Path, modules: set) -> set:
    module = module_of(path)
    text = strip_comments(path.read_text())
    found = set()
    paths = []
    for match in USE_GROUP.finditer(text):
        prefix = [p for p in match.group(2).split("::") if p]
        for item in re.split(r"[,\s{}]+", match.group(3)):
            head = item.split("::")[0]
            if head and head not in ("self",) and head[0].islower():
                paths.append((match.group(1), prefix + item.split("::")))
            elif head == "self" or head[:1].isupper():
                paths.append((match.group(1), prefix))
    for match in PATH.finditer(text):
        paths.append((match.group(1), [p for p in match.group(2).split("::") if p]))
    for root, rest in paths:
        target = resolve(module, path.name == "mod.rs", root, rest, modules)
        if target and target != module:
            found.add(target)
    return module, found


def cycles(graph: dict) -> list:
    seen, stack, found = set(), [], []

    def visit(node):
        if node in stack:
            found.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            visit(other)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    return found


def main() -> int:
    files = sorted(Path("src").rglob("*.rs"))
    modules = {module_of(f) for f in files}
    problems = []
    top = defaultdict(set)
    siblings = defaultdict(lambda: defaultdict(set))
    for path in files:
        module, targets = edges_of(path, modules)
        for target in targets:
            if module and target and module[0] != target[0]:
                top[module[0]].add(target[0])
            # Siblings: the first parts where the two paths part, under their common folder.
            common = 0
            while common < min(len(module), len(target)) and module[common] == target[common]:
                common += 1
            if common < len(module) and common < len(target):
                folder = module[:common]
                siblings[folder][module[common]].add(target[common])
    for module, targets in sorted(top.items()):
        for target in sorted(targets):
            if module in LAYER_OF and target in LAYER_OF and LAYER_OF[target] >= LAYER_OF[module]:
                problems.append(f"layer: {module} uses {target}, which is not in a layer before it")
    for cycle in cycles(top):
        problems.append("cycle between top-level modules: " + " -> ".join(cycle))
    for folder, graph in sorted(siblings.items()):
        name = "::".join(folder) or "crate"
        if folder and len(graph) > 1:
            print(f"{name}:")
            for module, targets in sorted(graph.items()):
                print(f"  {module} -> {', '.join(sorted(targets))}")
        for cycle in cycles(graph):
            problems.append(f"cycle in {name}: " + " -> ".join(cycle))
    print("top level:")
    for module, targets in sorted(top.items()):
        print(f"  {module} -> {', '.join(sorted(targets))}")
    for problem in problems:
        print("PROBLEM", problem)
    print("no cycle, layers respected" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
