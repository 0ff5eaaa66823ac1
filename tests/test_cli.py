"""``bn-props check``'s usage errors, in-process (``bn_reference.harness.cli``): each is one
line on stderr and exit status 2, found before pytest starts. The runs themselves (exit 0
and 1, from an installed wheel) are in ``tests/test_install.py``; here only one, the exit
status of ``-- -x`` under ``-n 2``."""
import os
import sys
import textwrap
from types import SimpleNamespace

import pytest

from bn_reference.harness import cli
from bn_reference.harness.activation import suite_dir

pytestmark = pytest.mark.meta


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project directory as the current one; sys.path and PYTHONPATH restored afterwards."""
    (tmp_path / "mine.py").write_text(textwrap.dedent(
        '''
        def bn(x, *, axes, scale, offset, epsilon, training):
            return x

        bn.bn_dtypes = ("float32",)  # the CLI's plumbing, not dtype probing (tests/test_dtype_probe.py)

        def eps_named_eps(x, *, axes, scale, offset, eps, training):
            return x

        bad_dtypes = lambda x, *, axes, scale, offset, epsilon, training: x
        bad_dtypes.bn_dtypes = ("float8",)
        '''
    ))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["check", "nosuchmodule:bn"], ["subject 'nosuchmodule:bn': cannot import module 'nosuchmodule'"]),
        (["check", "mine:nothing"], ["module 'mine' has no attribute 'nothing'"]),
        (["check", "mine"], ["expected module:attr"]),
        (["check", "mine:eps_named_eps"], ["cannot be called as f(x, *, axes, scale, offset, epsilon, training)", "'epsilon'"]),
        (["check", "mine:bad_dtypes"], ["float8"]),
        (["check", "mine:bn", "--profile", "nightly"], ["--profile", "'nightly'"]),
        (["check", "mine:bn", "-n", "many"], ["-n", "'many'"]),
        (["check"], ["SPEC"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(project, capsys, argv, needles):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("bn-props check: error: "), err
    for needle in needles:
        assert needle in err, err


def test_a_module_off_the_path_says_where_to_run_from(project, capsys):
    """``mybn:bn`` run from the directory above ``mybn.py``: the one line says to run from the
    directory that holds it, or to put that directory on PYTHONPATH."""
    (project / "sub").mkdir()
    (project / "sub" / "mybn.py").write_text("def bn(x, *, axes, scale, offset, epsilon, training):\n    return x\n")
    assert cli.main(["check", "mybn:bn"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "No module named 'mybn'" in err
    assert "run from the directory that holds mybn.py or mybn/, or add that directory to PYTHONPATH" in err


def test_a_dependency_missing_inside_the_module_is_not_blamed_on_the_path(project, capsys):
    """A module that is found but imports a missing package: the error names that package
    and gives no advice about where to run from."""
    (project / "needsdep.py").write_text("import nosuchdependency\n")
    assert cli.main(["check", "needsdep:bn"]) == 2
    err = capsys.readouterr().err
    assert "No module named 'nosuchdependency'" in err and "PYTHONPATH" not in err, err


def test_unknown_profile_in_the_environment_is_a_usage_error(project, capsys, monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "nightly")
    assert cli.main(["check", "mine:bn"]) == 2
    assert "HYPOTHESIS_PROFILE='nightly'" in capsys.readouterr().err


def test_report_help_names_the_files_written(tmp_path, capsys):
    """``bn-props check --help`` says where ``--report out.json`` writes, those are the files
    ``report.write`` writes, and pytest's ``--bn-report`` says the same."""
    from _pytest.config.argparsing import Parser

    from bn_reference.harness import plugin, report

    (json_path, _), (md_path, _) = report.write(tmp_path / "out.json", report.build({}, [], "ci"))
    assert json_path.exists() and md_path.exists()
    with pytest.raises(SystemExit):
        cli.main(["check", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    listed = shown[shown.index("options:"):]
    cli_help = listed[listed.index("--report PATH") + len("--report PATH"):listed.index("--repro-dir DIR")].strip()
    assert f"as JSON to PATH and as Markdown to PATH with its suffix replaced by .md (e.g. {json_path.name} and {md_path.name}" in cli_help
    parser = Parser(_ispytest=True)
    plugin.pytest_addoption(parser)
    (option,) = [o for o in parser.getgroup("bn-props").options if "--bn-report" in o.names()]
    assert option.attrs()["help"] == cli_help


def test_x_under_xdist_exits_1(project, monkeypatch):
    """``bn-props check MUTANT -n 2 -- -x``: the first failure stops the run, exit 1 (a
    property falsified), not 3 (pytest's "interrupted", from xdist's ``Interrupted``)."""
    for name in ("BN_IMPL", "BN_DB", "BN_CALL_TIMEOUT", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(name, raising=False)
    argv = ["check", "bn_reference.selftest.mutants:bessel_variance", "-n", "2", "--profile", "ci", "--", "-x", "-k", "agrees_with"]
    assert cli.main(argv) == 1


def test_the_pytest_command_line(tmp_path):
    """The installed suite with its own ini, the cache and repros in the current directory,
    one --bn-impl per spec, the options mapped, and what follows -- passed on unchanged."""
    options = SimpleNamespace(specs=["a:f", "b:g"], workers="auto", report="r.json", repro_dir=None, db=None)
    args = cli.pytest_args(options, ["-k", "zero_mean"], here=tmp_path)
    suite = suite_dir()
    assert args[:3] == [str(suite), "-c", str(suite / cli.INI)]
    assert (suite / cli.INI).exists()
    assert f"cache_dir={tmp_path / '.pytest_cache'}" in args
    assert args[args.index("-n") + 1] == "auto"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--bn-impl"] == ["a:f", "b:g"]
    assert args[args.index("--bn-report") + 1] == "r.json"
    assert args[args.index("--bn-repro-dir") + 1] == str(tmp_path / ".bn-props" / "repro")
    assert "--bn-db" not in args
    assert args[-2:] == ["-k", "zero_mean"]
