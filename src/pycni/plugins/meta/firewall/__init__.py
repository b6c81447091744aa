"""The firewall plugin: let a container's traffic through the host's FORWARD filtering.

A drop-in for the reference `firewall` (plugins.md 5.3, Go 1.1.1), chained
after an interface plugin: config keys `backend`, `iptablesAdminChainName`
(default CNI-ADMIN), `firewalldZone` (default trusted), `ingressPolicy`
(open, same-bridge, isolated); cniVersion 0.4.0 or later; prevResult is
required on ADD and CHECK, DEL works without it. The iptables backend writes
the reference's chains, rules, comments and positions (`iptables_backend`).

Where pycni differs from the reference 1.1.1:

* Backends: `iptables`, `firewalld` and pycni's own `nftables`
  (`nftables_backend`: table `inet cni_firewall`, rules found by an
  attachment comment, so DEL needs no prevResult and GC works). An empty
  `backend` means firewalld if it owns its name on the system bus, else
  iptables when the host's iptables filter table is in use, else nftables
  (the reference: firewalld, else iptables; see `detect`). An unknown
  `backend` is an error (the reference auto-detects).
* firewalld is spoken to over a minimal D-Bus client of our own (`dbus`);
  without firewalld on the system bus, ADD and CHECK with that backend fail
  with "firewalld backend is not supported: no firewalld on the system bus".
* `ingressPolicy: isolated` (from later reference versions) besides
  same-bridge; any other value is code 7 before anything is touched (the
  reference fails after adding its rules). The isolation rules go to
  iptables (iptables and firewalld backends) or to nftables.
* `iptablesAdminChainName` must be a name iptables accepts (at most 28
  printable ASCII characters, no quotes, backslash or whitespace, not a
  built-in chain or target): code 7 otherwise.
* A failed ADD leaves no rule of its own behind: the per-IP iptables rules
  it appended and the firewalld sources it added are removed, an nftables
  ADD is one transaction. Chains, jumps and isolation rules stay, as in the
  reference.
* Only the iptables tools of the families with addresses must exist (the
  reference needs iptables and ip6tables for every call).
* GC (CNI 1.1.0) removes this network's nftables rules of attachments not
  in `cni.dev/valid-attachments`; the iptables rules and firewalld sources
  carry no attachment identity, so they are not collected. With an empty
  `backend`, DEL also removes the attachment's nftables rules, whichever
  backend the host now selects.
"""

from __future__ import annotations

from pycni.skel import Plugin, plugin_main

PLUGIN = Plugin(
    about="CNI firewall plugin (pycni)",
    supported=("0.4.0", "1.0.0", "1.1.0"),
    verbs="pycni.plugins.meta.firewall.verbs",
)


def main() -> None:
    plugin_main(PLUGIN)
