"""Run only the cells a kill-matrix self-test judges: each mutant under the properties that
docs/properties.md claims catch it; correct variants, and mutants with no claim, under
every property.

What ``tests/test_kill_matrix.py`` and ``tests/test_gradient_mutants.py`` assert of a run is
(1) every mutant is caught by some property, (2) each claim of the table holds, (3) no
correct variant fails anything. A mutant's unclaimed cells take no part in (1) or (2) once a
claimed cell runs (a claim that holds is a catch), and they are the costly ones: a property
that does not catch a mutant draws all of its examples. So the self-tests run the claimed
cells only; the whole matrix, unclaimed cells included, is ``python -m
bn_reference.selftest.killmatrix`` (``--readme`` rewrites the table from it), and
``flakiness --mutants`` compares whole matrices across runs.

A pytest plugin for the child run: ``-p bn_reference.selftest.claimed --bn-claimed FILE``,
FILE a JSON object ``{subject spec: [property, ...]}`` (properties as the table names them,
``test_inference_returns_input[training=None]``: the test function and its parameters other
than the subject and the dtype). A subject test whose spec is in FILE and whose property is
not in its list is deselected; other tests are left alone. ``--bn-claimed-dtypes
DTYPE,...`` keeps, of the subject tests, only those in these dtypes (``none``: the tests
that take no dtype): a kill-matrix group that checks one slice of a correct variant
(``tests/test_kill_matrix.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

from bn_reference.harness.ids import split_id

__all__ = ["claimed_cells", "child_args", "dtype_args", "pytest_addoption", "pytest_collection_modifyitems"]

NO_DTYPE = "none"  # --bn-claimed-dtypes' name for the subject tests that take no dtype


def claimed_cells(claims: dict[str, set[str]], mutant_specs, short_name) -> dict[str, list[str]]:
    """``{spec: [properties]}`` for ``--bn-claimed``: each mutant with at least one claim in
    ``claims`` (``{property: {mutant names}}``, ``killmatrix.readme_claims``) mapped to the
    properties claimed to catch it; mutants with no claim are left out (they run everything)."""
    out = {}
    for spec in mutant_specs:
        props = sorted(p for p, names in claims.items() if short_name(spec) in names)
        if props:
            out[spec] = props
    return out


def child_args(claims: dict[str, set[str]], mutant_specs, directory: Path) -> tuple[str, ...]:
    """The child's pytest arguments that narrow it to the claimed cells (``claimed_cells``,
    written to ``directory/claimed.json``)."""
    from bn_reference.selftest.killmatrix import short_name

    path = Path(directory) / "claimed.json"
    path.write_text(json.dumps(claimed_cells(claims, mutant_specs, short_name), indent=1, sort_keys=True))
    return ("-p", "bn_reference.selftest.claimed", f"--bn-claimed={path}")


def dtype_args(dtypes) -> tuple[str, ...]:
    """The child's pytest arguments that keep only the subject tests in ``dtypes`` (``none``:
    those that take no dtype); ``None``: every dtype."""
    if dtypes is None:
        return ()
    return ("-p", "bn_reference.selftest.claimed", f"--bn-claimed-dtypes={','.join(dtypes)}")


def pytest_addoption(parser):
    group = parser.getgroup("bn-props")
    group.addoption(
        "--bn-claimed",
        metavar="FILE",
        default=None,
        help="(self-tests) JSON {spec: [property, ...]}: run those subjects only under those properties",
    )
    group.addoption(
        "--bn-claimed-dtypes",
        metavar="DTYPES",
        default=None,
        help=f"(self-tests) comma-separated dtypes: run the subject tests in those dtypes only ({NO_DTYPE!r}: those without one)",
    )


def pytest_collection_modifyitems(config, items):
    path = config.getoption("bn_claimed")
    dtypes = config.getoption("bn_claimed_dtypes")
    if not path and not dtypes:
        return
    cells = {spec: set(props) for spec, props in json.loads(Path(path).read_text()).items()} if path else {}
    specs = config.getoption("bn_impl", None) or list(cells)
    wanted = set(dtypes.split(",")) if dtypes else None
    keep, drop = [], []
    for item in items:
        prop, spec, dtype = split_id(item.name, specs)
        out = spec in cells and prop not in cells[spec]
        if wanted is not None and spec is not None and (dtype or NO_DTYPE) not in wanted:
            out = True
        (drop if out else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
