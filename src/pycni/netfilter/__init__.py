"""Netfilter: the rule sets the plugins program, and the two ways to program them.

`nftables` is our own nf_tables client on a NETLINK_NETFILTER socket (batched,
all-or-nothing transactions, listing, deletion by handle) and `nfexpr` the
expressions its rules are made of; `iptables` is the iptables-restore backend
kept for hosts and configs that need it; `names` holds the reference's hashed
chain names and comments; `host` answers "what does this host's netfilter
have" (iptables tools, legacy tables) without starting a process or
loading the iptables backend.
"""
