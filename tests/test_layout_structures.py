"""Only the structures module branches on a covariance type name.

Everything that depends on the covariance type (shapes, priors, MAP steps, Wishart
terms, initial values, parameter counts, ...) is a method of a structure in
:mod:`fastem.components.structures`; code elsewhere asks the structure. This test reads
every module under ``fastem/`` (except the structures module) and fails on a name of a
registered structure used as a branch: in a comparison (``==``, ``in (...)``), as a dict
key, as a subscript, as a match case, or in a literal collection of two or more names (a
hand-kept list of the types, which the registry gives). Docstrings, messages, defaults
and keyword arguments (``covariance_type="full"``) are not branches and are allowed.
"""

import ast
from pathlib import Path

import fastem
from fastem.components import structures

PACKAGE = Path(fastem.__file__).parent
STRUCTURES_MODULE = Path(structures.__file__).resolve()


def _names():
    return set(structures.STRUCTURES)


def _is_name(node, names):
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names


def _collection_names(node, names):
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts if _is_name(e, names)]
    return []


def offences(source, names, filename="<string>"):
    """(line, what) of each covariance-type-name branch in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if _is_name(operand, names):
                    found.append((node.lineno, f"compares {operand.value!r}"))
                elif _collection_names(operand, names):
                    found.append((node.lineno, f"tests membership in "
                                               f"{_collection_names(operand, names)}"))
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                if key is not None and _is_name(key, names):
                    found.append((node.lineno, f"a dict keyed by {key.value!r}"))
        elif isinstance(node, ast.Subscript):
            if _is_name(node.slice, names):
                found.append((node.lineno, f"subscript [{node.slice.value!r}]"))
        elif isinstance(node, ast.match_case):
            for pattern in ast.walk(node.pattern):
                if isinstance(pattern, ast.MatchValue) and _is_name(pattern.value, names):
                    found.append((pattern.lineno, f"match case {pattern.value.value!r}"))
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            listed = _collection_names(node, names)
            if len(listed) >= 2:
                found.append((node.lineno, f"a literal list of the types {listed}"))
    return sorted(set(found))


def package_offences(root, names):
    """{relative path: offences} for every module under ``root`` but the structures one."""
    result = {}
    for path in sorted(Path(root).rglob("*.py")):
        if path.name == "structures.py" and path.parent.name == "components":
            continue
        found = offences(path.read_text(encoding="utf-8"), names, str(path))
        if found:
            result[str(path.relative_to(root))] = found
    return result


def test_no_module_outside_structures_branches_on_a_covariance_type_name():
    found = package_offences(PACKAGE, _names())
    lines = [f"fastem/{path}:{line}: {what}" for path, items in found.items()
             for line, what in items]
    assert not lines, ("covariance type names used as branches outside "
                       "fastem/components/structures.py (ask the structure instead):\n"
                       + "\n".join(lines))


def test_the_structures_module_is_where_the_registry_lives():
    assert STRUCTURES_MODULE.parent.name == "components"
    assert {"full", "tied", "diag", "spherical", "EEI"} <= _names()


def test_the_check_finds_each_kind_of_branch():
    names = _names()
    source = '''
def f(kind, spec, table):
    """Docstring naming "full" and "tied" is fine."""
    if kind == "full":
        pass
    if spec.name in ("diag", "spherical"):
        pass
    shapes = {"tied": 1}
    value = table["EEI"]
    match kind:
        case "spherical":
            pass
    listed = ["full", "diag"]
    g(covariance_type="full")                     # a keyword argument: fine
    raise ValueError(f"{kind!r} is not 'tied'")   # a message: fine
    return kind or "diag"                         # a default: fine
'''
    found = offences(source, names)
    kinds = [what.split()[0] for _, what in found]
    assert [line for line, _ in found] == [4, 6, 6, 8, 9, 11, 13]
    assert kinds == ["compares", "a", "tests", "a", "subscript", "match", "a"]


def test_the_check_ignores_other_strings():
    source = 'if mode == "fast" or x in ("a", "b"):\n    y = {"full_name": 1}["full_name"]\n'
    assert offences(source, _names()) == []
