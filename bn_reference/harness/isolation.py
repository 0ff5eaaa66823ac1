"""Isolation mode (``--bn-isolate``): every subject call runs in a child process, under a
hard deadline and a memory limit, so a subject that hangs inside native code, kills its
process or allocates without bound fails the property it was checked in, and the run goes
on, with or without xdist.

``watchdog``'s SIGALRM timer cannot stop a subject blocked in native code (a C loop, a
deadlocked kernel: the Python-level handler runs only when control returns to the
interpreter), and without xdist a subject that kills its process takes pytest with it. Here:

* **one child per pytest process** (per xdist worker), forked from multiprocessing's
  *forkserver*, which imports the session's subject modules once: a fresh child after a
  crash or a hang costs a fork (milliseconds), not TensorFlow's import (seconds);
* **each call** is sent through a pipe: the arguments pickled there, the result (and any
  argument array the subject wrote into, which is written back into the caller's, so
  ``test_input_not_modified`` still sees the write) pickled back. A subject's own exception
  is re-raised in the parent as it was, its child traceback added as a note;
* **hard deadline**: the per-call limit (``--bn-call-timeout``, default 120 s; 0: none). The
  parent waits on the pipe; on expiry it kills the child with SIGKILL, which no native loop
  can ignore, and raises ``watchdog.SubjectTimeout`` naming test, subject, call and limit;
* **crash**: the child exits or dies of a signal (``os._exit``, SIGSEGV, SIGKILL, abort):
  ``SubjectCrashed`` with the exit status or the signal's name;
* **memory**: the child's address space (``RLIMIT_AS``) is limited to what it held at its
  start plus ``--bn-memory-limit`` MB (default: half the machine's memory; 0: none). A
  subject allocating past it gets ``MemoryError`` (or dies, if the allocation fails in
  native code), and the parent raises ``SubjectMemoryLimit`` naming the limit, instead of
  leaving the machine to its OOM killer.

The three errors derive from ``BaseException``, like ``SubjectTimeout``: Hypothesis reports
them at once rather than shrinking, i.e. re-running the example that hung or crashed. The
next call starts a fresh child. Cost: one pipe round trip per call (``benchmarks/bench.py``
measures it); when to use it: ``docs/edge-inputs.md``, "Hostile subjects".
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import traceback

import numpy as np
import pytest

from bn_reference.mathematics import watchdog
from bn_reference.harness.options import nonnegative

__all__ = ["SubjectCrashed", "SubjectMemoryLimit", "Isolator", "default_memory_mb", "STARTUP_SECONDS"]

STARTUP_SECONDS = 600.0  # the child's start: the forkserver's first import of TF & co under load
_MB = 1 << 20


class SubjectCrashed(BaseException):
    """The isolated process running a subject call exited or was killed by a signal."""


class SubjectMemoryLimit(BaseException):
    """A subject call allocated past the isolation memory limit."""


def default_memory_mb() -> float:
    """Half the machine's physical memory, in MB (0, i.e. no limit, where it is unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2 / _MB
    except (ValueError, OSError, AttributeError):
        return 0.0


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype}[{', '.join(map(str, value.shape))}]"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _call_text(name: str, args, kwargs) -> str:
    parts = [_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _arrays(args, kwargs):
    """``(position or name, array)`` of the ndarray arguments; ``((position, j), array)`` for
    the arrays in a list or tuple argument (a replicas subject's shards)."""
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            yield i, a
        elif isinstance(a, (list, tuple)):
            for j, s in enumerate(a):
                if isinstance(s, np.ndarray):
                    yield (i, j), s
    for k, v in kwargs.items():
        if isinstance(v, np.ndarray):
            yield k, v


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return str(number)


# -- the child ------------------------------------------------------------------------------


def _vm_bytes() -> int | None:
    """This process's current address-space size (Linux: ``VmSize``), or None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _limit_memory(extra: int) -> None:
    """``RLIMIT_AS`` = the address space held now + ``extra`` bytes (never above the hard limit)."""
    import resource

    base = _vm_bytes()
    if base is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = base + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _resolve(target, subjects):
    from bn_reference.subjects import load_subject

    kind, what, *attr = target
    if kind == "object":
        return what
    if what not in subjects:
        subjects[what] = load_subject(what)
    subject = subjects[what]
    return subject if kind == "subject" else getattr(subject.fn, attr[0])


def _raised(exc: BaseException) -> tuple:
    tb = "".join(traceback.format_exception(exc))
    try:
        payload = pickle.dumps(exc)
        pickle.loads(payload)
    except Exception:  # noqa: BLE001 - an exception that does not survive pickling
        payload = None
    return ("raised", payload, type(exc).__name__, str(exc), tb)


def serve(conn, specs, memory_bytes: int) -> None:
    """The child: load the subjects, limit the address space, then answer calls until EOF."""
    subjects = {}
    try:
        for spec in specs:
            _resolve(("subject", spec), subjects)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    if memory_bytes > 0:
        _limit_memory(memory_bytes)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            target, args, kwargs = conn.recv()
        except EOFError:
            return
        try:
            fn = _resolve(target, subjects)
            before = {k: a.copy() for k, a in _arrays(args, kwargs)}
            result = fn(*args, **kwargs)
        except MemoryError as exc:
            conn.send(("memory", f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc))))
            continue
        except BaseException as exc:  # noqa: BLE001 - the subject's exception goes back to the parent
            conn.send(_raised(exc))
            continue
        written = {k: a for k, a in _arrays(args, kwargs) if a.tobytes() != before[k].tobytes()}
        try:
            conn.send(("ok", result, written))
        except Exception as exc:  # noqa: BLE001 - pickling the result failed; nothing was sent
            conn.send(("unsendable", type(result).__name__, f"{type(exc).__name__}: {exc}"))


# -- the parent -----------------------------------------------------------------------------


class Isolator:
    """Runs subject calls in a child process (see the module docstring). ``subjects``: the
    session's ``Subject`` objects, loaded in the child at its start and named by spec."""

    def __init__(self, subjects=(), memory_mb: float = 0.0):
        self.subjects = list(subjects)
        self.memory_mb = float(memory_mb)
        self._ctx = multiprocessing.get_context("forkserver")
        self._proc = None
        self._conn = None
        self._test = None
        self._calls = 0
        self.starts = 0  # children started so far

    @staticmethod
    def preload(specs) -> None:
        """Start the forkserver (once per process), importing the subjects' modules before
        it forks any child."""
        from bn_reference.subjects import BUILTINS, LAYER_SUBJECTS

        modules = ["numpy", "bn_reference.harness.isolation", "bn_reference.subjects"]
        for spec in specs:
            target = BUILTINS.get(spec) or LAYER_SUBJECTS.get(spec) or spec
            if ":" in target:
                modules.append(target.split(":", 1)[0])
        multiprocessing.get_context("forkserver").set_forkserver_preload(list(dict.fromkeys(modules)))
        # Start the server now (its imports overlap collection), with this process's sys.path
        # as its PYTHONPATH: Python 3.11's forkserver ignores the sys.path it is handed, and a
        # subject module found through pytest's rootdir or ``--bn-impl``'s directory would
        # otherwise be imported again by every child.
        from multiprocessing import forkserver

        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            forkserver.ensure_running()
        finally:
            if before is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = before

    # child lifecycle

    def _start(self):
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=serve,
            args=(child, [s.spec for s in self.subjects], int(self.memory_mb * _MB)),
            name="bn-props-isolated",
            daemon=True,
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self.starts += 1
        if not parent.poll(STARTUP_SECONDS):
            self.close()
            raise RuntimeError(f"bn-props isolation: the child process did not start within {STARTUP_SECONDS:g} s")
        try:
            message = parent.recv()
        except EOFError:
            status = self._reap()
            raise RuntimeError(f"bn-props isolation: the child process died while starting ({status})") from None
        if message[0] != "ready":
            self.close()
            raise RuntimeError(f"bn-props isolation: the child process could not load the subjects: {message[1]}")
        return parent

    def _reap(self) -> str:
        """Wait for the dead child; its exit status or signal, in words."""
        proc, self._proc = self._proc, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if proc is None:
            return "no process"
        proc.join(10)
        code = proc.exitcode
        if code is None:  # closed its end of the pipe but lives on
            proc.kill()
            proc.join()
            return "closed its pipe without exiting (killed)"
        return f"killed by signal {_signal_name(-code)}" if code < 0 else f"exited with status {code}"

    def close(self) -> None:
        """Kill the child (if any)."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
        self._reap()

    # calls

    def _target(self, fn):
        spec = getattr(fn, "spec", None)
        if spec is not None and callable(getattr(fn, "fn", None)):
            return ("subject", spec), spec
        for s in self.subjects:  # a subject's attribute (its ``moments``...): named, not pickled
            for attr, value in getattr(s.fn, "__dict__", {}).items():
                if value is fn:
                    return ("attribute", s.spec, attr), f"{s.spec}.{attr}"
        name = getattr(fn, "__qualname__", None) or repr(fn)
        return ("object", fn), name

    def _where(self, name: str, args, kwargs) -> tuple[str, str]:
        """("<test id>: ", "in isolated call N of this test, f(x=float32[2, 3], ...)")."""
        test = watchdog._test_id
        if test != self._test:
            self._test, self._calls = test, 0
        self._calls += 1
        prefix = f"{test}: " if test else ""
        call = _call_text(name, args, kwargs)
        return prefix, f"in isolated call {self._calls} of this test, {call}"

    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` in the child (see the module docstring)."""
        __tracebackhide__ = True
        target, name = self._target(fn)
        prefix, where = self._where(name, args, kwargs)
        conn = self._conn if self._proc is not None and self._proc.is_alive() else self._start()
        try:
            conn.send((target, args, kwargs))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise SubjectCrashed(f"{prefix}subject {name!r}: its isolated process {self._reap()} {where}") from None
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"bn-props isolation cannot send {name} to the child process: {exc}") from None
        seconds = watchdog._seconds
        if not conn.poll(seconds if seconds > 0 else None):
            self.close()
            raise watchdog.SubjectTimeout(
                f"{prefix}subject {name!r} did not return within {seconds:g} s {where}; its process was killed "
                f"(hard deadline of --bn-isolate: --bn-call-timeout SECONDS or BN_CALL_TIMEOUT)"
            )
        try:
            reply = conn.recv()
        except (EOFError, ConnectionResetError):
            status = self._reap()
            hint = ""
            if self.memory_mb > 0 and ("SIGSEGV" in status or "SIGABRT" in status or "SIGBUS" in status):
                hint = f" (or a failed allocation in native code, under the memory limit of {self.memory_mb:g} MB)"
            raise SubjectCrashed(f"{prefix}subject {name!r}: its isolated process {status} {where}{hint}") from None
        kind = reply[0]
        if kind == "ok":
            _, result, written = reply
            for key, value in written.items():
                original = args[key] if isinstance(key, int) else args[key[0]][key[1]] if isinstance(key, tuple) else kwargs[key]
                if original.flags.writeable and original.shape == value.shape and original.dtype == value.dtype:
                    np.copyto(original, value)
            return result
        if kind == "memory":
            self.close()  # give the memory back; the next call starts afresh
            raise SubjectMemoryLimit(
                f"{prefix}subject {name!r} allocated past the isolation memory limit of {self.memory_mb:g} MB "
                f"(address space beyond its process's start; --bn-memory-limit MB) {where}: {reply[1]}"
            )
        if kind == "unsendable":
            raise TypeError(
                f"subject {name!r} returned a {reply[1]}, which cannot be sent back from its isolated process: {reply[2]}"
            )
        _, payload, type_name, text, tb = reply
        exc = None
        if payload is not None:
            try:
                exc = pickle.loads(payload)
            except Exception:  # noqa: BLE001
                exc = None
        if exc is None:
            exc = RuntimeError(f"{type_name}: {text}")
        exc.add_note(f"raised in the isolated process (--bn-isolate) {where}:\n{tb.rstrip()}")
        raise exc


# -- pytest plugin (loaded by bn_reference.harness.plugin) ------------------------------------------

_ISOLATOR = pytest.StashKey["Isolator | None"]()
_LINE = pytest.StashKey[str]()


_mb_arg = nonnegative("--bn-memory-limit/BN_MEMORY_LIMIT", "MB")


def pytest_addoption(parser):
    group = parser.getgroup("bn-props")
    group.addoption(
        "--bn-isolate",
        action="store_true",
        default=None,
        help="run every subject call in a child process with a hard deadline (--bn-call-timeout) and a "
        "memory limit: a native hang, a crash or runaway allocation fails that property and the run "
        "goes on (env BN_ISOLATE=1)",
    )
    group.addoption(
        "--bn-memory-limit",
        metavar="MB",
        type=_mb_arg,
        default=None,
        help="with --bn-isolate: address space a subject's process may grow by, in MB "
        "(env BN_MEMORY_LIMIT; default: half the machine's memory; 0 disables)",
    )


def pytest_configure(config):
    from bn_reference.harness.activation import is_active
    from bn_reference.harness.plugin import subjects_of

    from bn_reference.harness.crashes import _is_distributing

    config.stash[_ISOLATOR] = None
    isolate = config.getoption("bn_isolate")
    if isolate is None:
        isolate = os.environ.get("BN_ISOLATE", "").strip().lower() in ("1", "true", "yes")
    if not isolate or not is_active(config):
        return
    memory = config.getoption("bn_memory_limit")
    if memory is None:
        env = os.environ.get("BN_MEMORY_LIMIT", "").strip()
        try:
            memory = _mb_arg(env) if env else default_memory_mb()
        except Exception as exc:  # noqa: BLE001 - argparse.ArgumentTypeError
            raise pytest.UsageError(str(exc)) from None
    limit = f"memory limit {memory:g} MB" if memory > 0 else "no memory limit"
    config.stash[_LINE] = f"bn-props isolation: each subject call in a child process (deadline --bn-call-timeout; {limit})"
    if not hasattr(config, "workerinput") and _is_distributing(config):
        return  # an xdist controller runs no test: its workers isolate their own calls
    subjects = subjects_of(config)
    Isolator.preload([s.spec for s in subjects])
    isolator = config.stash[_ISOLATOR] = Isolator(subjects, memory)
    watchdog.delegate(isolator.call)


def pytest_unconfigure(config):
    isolator = config.stash.get(_ISOLATOR, None)
    if isolator is not None:
        watchdog.delegate(None)
        isolator.close()


def pytest_report_header(config):
    line = config.stash.get(_LINE, None)
    return [line] if line else []
