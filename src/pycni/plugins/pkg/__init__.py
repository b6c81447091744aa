"""The toolkit every pycni plugin is built from, one topic per module.

The reference keeps these in `pkg/ip`, `pkg/ipam`, `pkg/ns` and friends:

- `errors`: a kernel failure as a CNIError (`kernel_error`), `annotate` to
  prefix a step's errors, `Failures` to collect every failure of a DEL or GC
  and report them all, `warn`;
- `transaction`: `add_transaction()`, the undo stack that makes ADD all or
  nothing;
- `netns`: the rtnetlink handles (`open_netlink`, host or container) and
  `NetnsGone`;
- `veth`: veth pairs across namespaces, deleting links quietly or by name;
- `ctrlink`: the container's link deleted on DEL (netns or link gone is
  success) and by an ADD's undo; the DEL verb of one-link plugins;
- `sysctl`: sysctl writes in the host and inside a container netns;
- `iface`: ConfigureIface (addresses, up, DAD, routes of an IPAM result);
- `ipam`: delegating to IPAM (`add_and_configure`, DEL/CHECK/GC/STATUS) with
  pycni's own launchers run in-process;
- `check`: the CHECK validators of addresses and routes, and the CHECK
  preamble (prevResult required, this attachment's interface and link);
- `netconf`: the keys every plugin config has (name, cniVersion, ipam, dns,
  runtimeConfig, args, prevResult), decoded with one error dialect.

Handles are named `host_nl` (the sandbox host's netns) and `ctr_nl` (the
container's); a plugin's decoded config is `conf`.
"""
