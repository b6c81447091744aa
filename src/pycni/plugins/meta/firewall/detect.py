"""What an empty `backend` means on this host, decided without starting a process.

The reference: firewalld if it owns its name on the system bus, else
iptables. pycni: firewalld likewise, else iptables when the host's iptables
filter table is in use (legacy: "filter" listed in
/proc/net/ip_tables_names or ip6_tables_names; iptables-nft: an nf_tables
table `ip filter` or `ip6 filter` exists), else nftables, which is also the
answer when there is no `iptables` binary at all. So a host whose FORWARD
policy lives in iptables gets the reference's rules there, and an
nftables-only host gets no iptables tables created behind its back.
"""

from __future__ import annotations

from pycni.netfilter.host import iptables_binary, legacy_tables
from pycni.plugins.meta.firewall.busaddr import bus_may_exist


def default_backend() -> str:
    # the D-Bus client is loaded only when there may be a bus to ask
    if bus_may_exist():
        from pycni.plugins.meta.firewall import firewalld

        if firewalld.running():
            return "firewalld"
    if iptables_binary(4) is None:
        return "nftables"
    return "iptables" if filter_table_in_use() else "nftables"


def filter_table_in_use() -> bool:
    """An iptables filter table exists in this network namespace (either family)."""
    if "filter" in legacy_tables(4) or "filter" in legacy_tables(6):
        return True
    from pycni.netfilter.nftables import Nft

    try:
        with Nft() as c:
            return c.table_exists("ip", "filter") or c.table_exists("ip6", "filter")
    except OSError:
        return False
