"""The iptables backend: one `iptables-save` read and one `iptables-restore
--noflush` write per table and family, never a shell.

Rules are compared the way iptables itself does once they are loaded: the
order of matches, option aliases (`--destination-ports`/`--dports`) and the
address forms (`10.1.2.3` vs `10.1.2.3/32`, a host address vs its network)
do not matter, so "append if absent" and "delete if present" hold across
rules that the Go plugins wrote with their argument order and ours.

No `subprocess`: tools are spawned with os.posix_spawn (see `run`).
"""

from __future__ import annotations

import os

from pycni.faultpoint import step
from pycni.netfilter.host import iptables_binary, which
from pycni.spec.ipnet import IPNet, format_ip

#: family -> (iptables, iptables-save, iptables-restore)
TOOLS = {
    4: ("iptables", "iptables-save", "iptables-restore"),
    6: ("ip6tables", "ip6tables-save", "ip6tables-restore"),
}

_ALIASES = {
    "--source": "-s",
    "--src": "-s",
    "--destination": "-d",
    "--dst": "-d",
    "--jump": "-j",
    "--goto": "-g",
    "--protocol": "-p",
    "--in-interface": "-i",
    "--out-interface": "-o",
    "--match": "-m",
    "--destination-ports": "--dports",
    "--destination-port": "--dport",
    "--source-ports": "--sports",
    "--source-port": "--sport",
}


class IptablesError(Exception):
    """An iptables tool failed; the message names the tool, the step and its stderr."""


#: serialises our read-modify-write of a table across processes: a restore
#: planned from a stale read could otherwise drop or duplicate another's rules
LOCK_PATH = "/run/cni/pycni-iptables.lock"


class Lock:
    """An exclusive flock on LOCK_PATH for one read-change-restore (none if
    it cannot be opened: a read-only /run must not stop the plugin)."""

    __slots__ = ("_fd",)

    def __enter__(self) -> Lock:
        import fcntl

        try:
            os.makedirs(os.path.dirname(LOCK_PATH), mode=0o755, exist_ok=True)
            self._fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            self._fd = -1
            return self
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # drops the flock


def change(family: int, name: str, op: str, edit, attempts: int = 2):
    """Read table `name`, let `edit(table)` queue its changes, write them in
    one iptables-restore, under the Lock; read and edit again if the restore
    fails (a tool outside pycni changed the table meanwhile). Returns what
    `edit` returned."""
    for attempt in range(attempts):
        with Lock():
            table = Table.read(family, name)
            out = edit(table)
            try:
                table.commit(op)
                return out
            except IptablesError:
                if attempt == attempts - 1:
                    raise
    raise AssertionError("unreachable")


def run(argv: list[str], stdin: bytes | None, op: str) -> bytes:
    """Run one iptables tool (found on PATH, C locale); IptablesError on failure.

    Spawned with os.posix_spawn, not `subprocess` (whose import costs a
    plugin about 12 ms). The tools take their input whole before answering
    and say little on stderr, so stdin is written first, then stdout and
    stderr are read to their ends; `-w` bounds their wait for the xtables lock.
    """
    path = which(argv[0])
    if path is None:
        raise IptablesError(f"{op}: {argv[0]} not found")
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    pipes: list[int] = []
    try:
        in_r, in_w = os.pipe()
        pipes += (in_r, in_w)
        out_r, out_w = os.pipe()
        pipes += (out_r, out_w)
        err_r, err_w = os.pipe()
        pipes += (err_r, err_w)
        actions = [
            (os.POSIX_SPAWN_DUP2, in_r, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        pid = os.posix_spawn(path, argv, env, file_actions=actions)
        for fd in (in_r, out_w, err_w):
            os.close(fd)
            pipes.remove(fd)
        if stdin:
            try:
                _write_all(in_w, stdin)
            except BrokenPipeError:
                pass  # it exited early: its status and stderr say why
        os.close(in_w)
        pipes.remove(in_w)
        out = _read_all(out_r)
        err = _read_all(err_r)
    except OSError as e:
        raise IptablesError(f"{op}: {argv[0]}: {e.strerror or e}")
    finally:
        for fd in pipes:
            os.close(fd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        msg = err.decode("utf-8", "replace").strip() or f"exit status {code}"
        raise IptablesError(f"{op}: {msg}")
    return out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def binary(family: int) -> str | None:
    """The path of iptables/ip6tables on PATH (no process started)."""
    return iptables_binary(family)


def split_args(line: str) -> list[str]:
    """Split an iptables-save rule line (double quotes, backslash escapes)."""
    out: list[str] = []
    cur: list[str] = []
    in_word = quoted = False
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if quoted:
            if ch == "\\" and i + 1 < n:
                i += 1
                cur.append(line[i])
            elif ch == '"':
                quoted = False
            else:
                cur.append(ch)
        elif ch == '"':
            quoted = in_word = True
        elif ch in " \t":
            if in_word:
                out.append("".join(cur))
                cur, in_word = [], False
        else:
            if ch == "\\" and i + 1 < n:
                i += 1
                ch = line[i]
            cur.append(ch)
            in_word = True
        i += 1
    if in_word:
        out.append("".join(cur))
    return out


def canon_net(text: str) -> str:
    """An address or CIDR as iptables prints it: network address/prefix."""
    try:
        if "/" not in text:
            text += "/128" if ":" in text else "/32"
        net = IPNet.parse(text)
    except ValueError:
        return text
    return f"{format_ip(net.family, net.network)}/{net.prefixlen}"


def rule_key(chain: str, args: list[str]) -> tuple:
    """What makes two rules the same rule: the chain and the multiset of
    (negated, option, values) items, aliases and address forms canonical."""
    items: list[tuple] = []
    neg = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "!":
            neg = True
            i += 1
            continue
        opt = _ALIASES.get(a, a)
        i += 1
        values = []
        while (
            i < len(args) and not (args[i].startswith("-") and len(args[i]) > 1) and args[i] != "!"
        ):
            values.append(args[i])
            i += 1
        if opt in ("-s", "-d") and values:
            values = [canon_net(values[0]), *values[1:]]
        elif opt == "-p" and values:
            values = [values[0].lower()]
        items.append((neg, opt, tuple(values)))
        neg = False
    # iptables-save spells out the implicit `-m tcp` of `-p tcp --dport`
    protos = {v[0] for n, o, v in items if o == "-p" and v and not n}
    items = [i for i in items if not (i[1] == "-m" and i[2] and i[2][0] in protos)]
    return (chain, tuple(sorted(items)))


class Rule:
    """One `-A` line of iptables-save: its chain, arguments, and what the
    plugins look at (comment, jump target, source)."""

    __slots__ = ("args", "chain", "key")

    def __init__(self, chain: str, args: list[str]) -> None:
        self.chain = chain
        self.args = args
        self.key = rule_key(chain, args)

    def _value(self, *opts: str) -> str:
        for i, a in enumerate(self.args[:-1]):
            if a in opts:
                return self.args[i + 1]
        return ""

    @property
    def comment(self) -> str:
        return self._value("--comment")

    @property
    def target(self) -> str:
        return self._value("-j", "--jump", "-g", "--goto")

    @property
    def source(self) -> str:
        i = next((k for k, a in enumerate(self.args) if a in ("-s", "--source")), -1)
        if i < 0 or i + 1 >= len(self.args):
            return ""
        negated = i > 0 and self.args[i - 1] == "!"
        return ("!" if negated else "") + canon_net(self.args[i + 1])


class Table:
    """A snapshot of one table of one family, and the restore lines that
    change it; `commit()` applies them in one iptables-restore."""

    def __init__(self, family: int, name: str, chains: set[str], rules: list[Rule]) -> None:
        self.family = family
        self.name = name
        self.chains = chains
        self.rules = rules
        self.lines: list[str] = []
        self._keys = {r.key for r in rules}

    @classmethod
    def read(cls, family: int, name: str) -> Table:
        save = TOOLS[family][1]
        out = run([save, "-t", name], None, f"{save} -t {name}")
        return cls.parse(family, name, out.decode("utf-8", "surrogateescape"))

    @classmethod
    def parse(cls, family: int, name: str, text: str) -> Table:
        chains: set[str] = set()
        rules: list[Rule] = []
        inside = False
        for line in text.splitlines():
            if line.startswith("*"):
                inside = line[1:] == name
            elif not inside:
                continue
            elif line.startswith(":"):
                chains.add(line[1:].split(" ", 1)[0])
            elif line.startswith("-A "):
                args = split_args(line)
                if len(args) >= 2:
                    rules.append(Rule(args[1], args[2:]))
        return cls(family, name, chains, rules)

    def has(self, chain: str, args: list[str]) -> bool:
        return rule_key(chain, args) in self._keys

    def rules_of(self, chain: str) -> list[Rule]:
        return [r for r in self.rules if r.chain == chain]

    def ensure_chain(self, chain: str) -> None:
        """Create the chain if the snapshot lacks it: `-N`, not `:chain`, whose
        --noflush meaning for an existing user chain is "flush it" -- a chain
        another process created since the save would lose its rules; `-N`
        fails the restore instead ("Chain already exists"): read again, retry."""
        if chain not in self.chains:
            self.chains.add(chain)
            self.lines.append(f"-N {chain}\n")

    def append_unique(self, chain: str, args: list[str]) -> bool:
        """Append the rule unless the table (or an earlier line) has it."""
        return self._add_unique("-A", chain, args)

    def insert_unique(self, chain: str, args: list[str]) -> bool:
        """Insert the rule at position 1 unless it is present anywhere."""
        return self._add_unique("-I", chain, args)

    def _add_unique(self, op: str, chain: str, args: list[str]) -> bool:
        key = rule_key(chain, args)
        if key in self._keys:
            return False
        self._keys.add(key)
        rule = Rule(chain, list(args))
        if op == "-I":
            self.rules.insert(0, rule)
        else:
            self.rules.append(rule)
        self.lines.append(restore_line(op, chain, args))
        return True

    def delete(self, rule: Rule) -> None:
        """Delete a rule this snapshot holds (by its own arguments)."""
        if rule in self.rules:
            self.rules.remove(rule)
            self._keys = {r.key for r in self.rules}
            self.lines.append(restore_line("-D", rule.chain, rule.args))

    def delete_if_present(self, chain: str, args: list[str]) -> bool:
        key = rule_key(chain, args)
        for r in self.rules:
            if r.key == key:
                self.delete(r)
                return True
        return False

    def delete_chain(self, chain: str) -> None:
        """Flush and delete a chain (its rules first leave the snapshot)."""
        if chain not in self.chains:
            return
        self.rules = [r for r in self.rules if r.chain != chain]
        self._keys = {r.key for r in self.rules}
        self.chains.discard(chain)
        self.lines.append(f"-F {chain}\n-X {chain}\n")

    def commit(self, op: str) -> None:
        """Apply the pending lines (if any) in one iptables-restore --noflush."""
        if not self.lines:
            return
        step("iptables.restore")
        restore = TOOLS[self.family][2]
        script = f"*{self.name}\n" + "".join(self.lines) + "COMMIT\n"
        run(
            [restore, "--noflush", "-w", "5"],
            script.encode("utf-8", "surrogateescape"),
            f"{op} ({restore})",
        )
        self.lines = []


def restore_quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_./:!," for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def restore_line(op: str, chain: str, args: list[str]) -> str:
    return " ".join([op, chain, *(restore_quote(a) for a in args)]) + "\n"
