"""`pycni run`: run a command in a new netns attached to CNI networks.

The namespace lives exactly as long as the command: ADD before, DEL and
namespace removal after -- also when the command fails or cannot be found,
and when pycni gets INT, TERM, HUP or QUIT, which it passes on to the command
and then waits for it (see `pycni.cli.signals`). Signals that arrive while
the networks are being set up abort the setup, and the teardown still runs.

Exit status: the command's; 128+N when it died of signal N (as a shell
reports it); 127 when it cannot be found, 126 when it cannot be executed;
128+N when signal N stopped pycni before the command started.
"""

from __future__ import annotations

import os
import secrets
import shutil

from pycni.cli import defaultnet
from pycni.cli.main import DEFAULT_CACHE_DIR, Failure, UsageError, check_dir, parse_args

HELP = f"""\
COMMAND runs in a new network namespace with lo up and one interface per
--net NAME (a network of $NETCONFPATH, default /etc/cni/net.d): eth0, or the
-i/--ifname name, on the first, then net1, net2, ... When COMMAND exits, or
pycni gets INT, TERM, HUP or QUIT (passed on to COMMAND first), the
interfaces, IP reservations, cache entries and the namespace are removed.

Without --net, the built-in default network is used, and it changes the
host pycni runs on: it creates the bridge {defaultnet.DEFAULT_BRIDGE} with the address 198.18.0.1/24
(left in place afterwards), turns on IPv4 forwarding (net.ipv4.ip_forward=1,
left on) and hands out addresses of {defaultnet.DEFAULT_SUBNET} (reservations in
/var/lib/cni/networks/{defaultnet.DEFAULT_NAME}). Outside a throwaway machine or namespace, give
--net your own network; `pycni demo` shows everything in a sandbox.

Plugins come from $CNI_PATH, else from a private install in a temp dir.
Exit status: COMMAND's; 128+N if it died of signal N; 127 if it is not
found, 126 if it cannot be executed."""


def _plugin_path(tmp_holder: list[str]) -> list[str]:
    """CNI_PATH when set; otherwise a private install of pycni's plugins."""
    env = os.environ.get("CNI_PATH", "")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    import tempfile

    from pycni.cli.install import install

    tmp = tempfile.mkdtemp(prefix="pycni-run-")
    tmp_holder.append(tmp)
    install(os.path.join(tmp, "bin"))
    return [os.path.join(tmp, "bin")]


def _networks(names: list[str]) -> list:
    if not names:
        return [defaultnet.default_network()]
    from pycni.runtime import load_network_conf

    conf_dir = os.environ.get("NETCONFPATH") or "/etc/cni/net.d"
    return [load_network_conf(conf_dir, name) for name in names]


def _ifnames(first: str, count: int) -> list[str]:
    """`first`, then net1, net2, ... (skipping `first`), `count` in all."""
    names = [first]
    i = 1
    while len(names) < count:
        if f"net{i}" != first:
            names.append(f"net{i}")
        i += 1
    return names[:count]


def _spawn(command: list[str], mask: set[int]) -> int:
    """posix_spawnp `command` with `mask` and default SIGPIPE/SIGXFSZ (which
    Python ignores); a Failure with the shell's 127/126 if it cannot start."""
    import signal

    try:
        return os.posix_spawnp(
            command[0],
            command,
            os.environ,
            setsigmask=mask,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except FileNotFoundError:
        if "/" in command[0]:
            raise Failure(f"{command[0]}: no such file or directory", status=127)
        raise Failure(f"{command[0]}: command not found", status=127)
    except OSError as err:
        raise Failure(f"{command[0]}: cannot execute: {err.strerror or err}", status=126)


def run(
    command: list[str],
    net_names: list[str],
    cache_dir: str = DEFAULT_CACHE_DIR,
    timeout: float | None = None,
    ifname: str = "eth0",
) -> int:
    """Run `command` attached to the networks; return its exit status (see the
    module docstring). Must be called from the main thread."""
    from pycni.cli.main import describe_error
    from pycni.cli.signals import Trap
    from pycni.kernel import netns
    from pycni.plugins.forkserver import ForkServerExecutor
    from pycni.runtime import CNIConfig, RuntimeConf

    check_dir("cache dir", cache_dir)
    networks = _networks(net_names)
    ifnames = _ifnames(ifname, len(networks))
    tmp: list[str] = []
    name = f"pycni-run-{secrets.token_hex(4)}"
    attached: list = []
    path = ""
    created = False
    cni = None
    status = None
    problem: BaseException | None = None
    executor = ForkServerExecutor()  # pycni's installed plugins: forked, not exec'd
    with Trap() as trap:
        try:
            cni = CNIConfig(
                path=_plugin_path(tmp), cache_dir=cache_dir, timeout=timeout, executor=executor
            )
            created = True  # before: an interrupted create is removed too
            path = netns.create_named(name)
            steps = [(defaultnet.loopback_network(), "lo"), *zip(networks, ifnames)]
            for net, iface in steps:
                rt = RuntimeConf(name, path, iface)
                attached.append((net, rt))  # DEL follows even a failed ADD (spec)
                cni.add_network_list(net, rt)
            trap.hold()
            with netns.enter(path):
                pid = _spawn(command, trap.child_mask)
            status = os.waitstatus_to_exitcode(trap.wait_child(pid))
        except BaseException as err:
            problem = err
            raise
        finally:
            trap.hold()
            errors = []
            if cni is not None:
                for net, rt in reversed(attached):
                    try:
                        cni.del_network_list(net, rt)
                    except Exception as err:  # keep tearing down: the netns must go
                        errors.append(f"DEL {net.name} {rt.ifname}: {describe_error(err)}")
            executor.close()
            if created:
                try:
                    netns.delete_named(name)
                except OSError as err:
                    errors.append(f"removing netns {name}: {describe_error(err)}")
            for t in tmp:
                shutil.rmtree(t, ignore_errors=True)
            if errors:
                if problem is not None:
                    problem.pycni_notes = errors  # type: ignore[attr-defined]
                else:
                    raise Failure(
                        "teardown failed: " + "; ".join(errors), status=_exit_code(status) or 1
                    )
    return _exit_code(status)


def _exit_code(status: int | None) -> int:
    """A shell's exit status for waitstatus_to_exitcode's value: 128+N for signal N."""
    if status is None:
        return 0
    return 128 - status if status < 0 else status


def main(argv: list[str]) -> int:
    opts, command, given = parse_args(argv, values=("--net",), command_line=True)
    if not command:
        raise UsageError("no command given")
    ifname = opts.ifname or os.environ.get("CNI_IFNAME") or "eth0"
    return run(command, given.get("--net", []), opts.cache_dir, opts.timeout, ifname)
