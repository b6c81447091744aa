"""What an installed launcher runs: VERSION at the interpreter's floor, and
everything else through the plugin's own `main()` with the bundle in use
(which the installation's own `pycni` command uses too).

A runtime asks every plugin for VERSION, often, and it is the call whose
cost is nothing but start-up. The launcher carries the plugin's VERSION
answer, computed by `pycni install` from the plugin's declaration, so that
answering it imports nothing: not `os` (1 ms here, with
`_collections_abc`), not `__future__`, not skel. Only `posix` and `sys`,
which the interpreter has loaded before any code runs, are used on that
path, and the process ends without the interpreter's finalization
(exit_without_finalizing, which skel's plugins and the installation's
`pycni` command end with too). Anything unusual (an argument such as `dhcp daemon`, a failed write)
goes through the plugin's `main()`, which owns every error message.
"""

import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import NoReturn


def run(module: str, version_answer: bytes) -> None:
    version = len(sys.argv) <= 1 and posix.environ.get(b"CNI_COMMAND") == b"VERSION"
    if version and _write_all(version_answer):
        posix._exit(0)  # nothing is buffered; finalization alone is 1.7 ms here
    activate_bundle()
    __import__(module, fromlist=["main"]).main()


def activate_bundle() -> None:
    """Serve pycni's modules from the bundle of the copy on sys.path[0]."""
    from pycni import bundle

    bundle.activate(sys.path[0] + "/" + bundle.FILE_NAME)


def _write_all(data: bytes) -> bool:
    try:
        while data:
            data = data[posix.write(1, data) :]
    except OSError:
        return False
    return True


def exit_without_finalizing(code: int) -> "NoReturn":
    """End this process as the interpreter would at exit (threads joined,
    atexit functions run, std streams flushed) but without its finalization:
    tearing down every module and freeing every object costs 2-3 ms of a
    plugin exec here, for memory the kernel takes back anyway."""
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    posix._exit(code)
