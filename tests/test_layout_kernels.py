"""Where compiled code lives, and how wide its entry points are (issue 26).

Every function compiled by numba (declared with ``fastem._jit.kernel``, or with numba's
``njit``/``jit``) lives in ``fastem/kernels/``, and a parallel entry point
(``@kernel(parallel=True)``) takes at most ``MAX_ENTRY_ARGUMENTS`` arguments: one job
per entry point, arrays and scalars only, no mode flags or placeholder arrays.
The checks read the source (AST), so they also see modules no test imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fastem"
KERNELS = PACKAGE / "kernels"
COMPILING = {"kernel", "njit", "jit"}
MAX_ENTRY_ARGUMENTS = 10

# Parallel entry points allowed more arguments, each with the reason. Keep it short: an
# entry point belongs here only until it is split or narrowed (issue 26 follow-up), and
# test_the_exceptions_are_still_needed fails once it no longer needs to be.
WIDE_ENTRY_POINTS: dict[str, str] = {}


def _decorator_name(node):
    """``kernel`` for ``@kernel``, ``@kernel(...)``, ``@_jit.kernel``, ``@numba.njit(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _is_parallel(node):
    return isinstance(node, ast.Call) and any(
        keyword.arg == "parallel" and isinstance(keyword.value, ast.Constant)
        and keyword.value.value is True for keyword in node.keywords)


def compiled_functions(root=PACKAGE):
    """(path, function name, number of arguments, parallel) of every compiled function."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            compiling = [d for d in node.decorator_list if _decorator_name(d) in COMPILING]
            if not compiling:
                continue
            args = node.args
            n_args = len(args.posonlyargs) + len(args.args) + len(args.kwonlyargs)
            found.append((path, node.name, n_args, any(_is_parallel(d) for d in compiling)))
    return found


def misplaced(functions):
    return [f"{path.relative_to(PACKAGE.parent)}:{name}" for path, name, _, _ in functions
            if KERNELS not in path.parents]


def too_wide(functions):
    return [f"{path.relative_to(PACKAGE.parent)}:{name} takes {n_args} arguments"
            for path, name, n_args, parallel in functions
            if parallel and n_args > MAX_ENTRY_ARGUMENTS and name not in WIDE_ENTRY_POINTS]


def test_the_checks_see_the_kernels():
    functions = compiled_functions()
    names = {name for _, name, _, _ in functions}
    assert {"gaussian_posterior_stats", "forward_backward", "add_in_order"} <= names
    assert any(parallel for *_, parallel in functions)


def test_every_kernel_lives_in_the_kernels_package():
    assert misplaced(compiled_functions()) == []


def test_parallel_entry_points_take_few_arguments():
    assert too_wide(compiled_functions()) == []


def test_the_exceptions_are_still_needed():
    wide = {name for _, name, n_args, parallel in compiled_functions()
            if parallel and n_args > MAX_ENTRY_ARGUMENTS}
    assert set(WIDE_ENTRY_POINTS) <= wide


@pytest.mark.parametrize("source, where, problems", [
    ("from .._jit import kernel\n@kernel\ndef f(x):\n    return x\n", "hmm", 1),
    ("import numba\n@numba.njit(cache=True)\ndef f(x):\n    return x\n", "mixture", 1),
    ("from .._jit import kernel\n@kernel\ndef f(x):\n    return x\n", "kernels", 0),
    ("def kernel(f):\n    return f\ndef f(x):\n    return x\n", "hmm", 0),
])
def test_a_kernel_outside_kernels_is_found(tmp_path, source, where, problems):
    (tmp_path / where).mkdir()
    (tmp_path / where / "m.py").write_text(source)
    functions = compiled_functions(tmp_path)
    assert len([f for f in functions if (tmp_path / "kernels") not in f[0].parents]) \
        == problems


def test_a_wide_parallel_entry_point_is_found(tmp_path):
    arguments = ", ".join(f"a{i}" for i in range(MAX_ENTRY_ARGUMENTS + 1))
    (tmp_path / "m.py").write_text(
        "from .._jit import kernel, prange\n"
        f"@kernel(parallel=True)\ndef wide({arguments}):\n    return a0\n"
        f"@kernel\ndef serial_helper({arguments}):\n    return a0\n"
        f"@kernel(parallel=True)\ndef narrow(a0):\n    return a0\n")
    wide = [name for _, name, n_args, parallel in compiled_functions(tmp_path)
            if parallel and n_args > MAX_ENTRY_ARGUMENTS]
    assert wide == ["wide"]
