"""The plugins pycni ships: CNI type name -> package with a `PLUGIN` and a main().

Every plugin process imports this package first, so it holds nothing but
this table.
"""

PLUGINS = {
    "loopback": "pycni.plugins.main.loopback",
    "bridge": "pycni.plugins.main.bridge",
    "macvlan": "pycni.plugins.main.macvlan",
    "ipvlan": "pycni.plugins.main.ipvlan",
    "vlan": "pycni.plugins.main.vlan",
    "ptp": "pycni.plugins.main.ptp",
    "host-device": "pycni.plugins.main.host_device",
    "dummy": "pycni.plugins.main.dummy",
    "tap": "pycni.plugins.main.tap",
    "host-local": "pycni.plugins.ipam.host_local",
    "static": "pycni.plugins.ipam.static",
    "dhcp": "pycni.plugins.ipam.dhcp",
    "sql": "pycni.plugins.ipam.sql",
    "portmap": "pycni.plugins.meta.portmap",
    "tuning": "pycni.plugins.meta.tuning",
    "sbr": "pycni.plugins.meta.sbr",
    "bandwidth": "pycni.plugins.meta.bandwidth",
    "firewall": "pycni.plugins.meta.firewall",
    "vrf": "pycni.plugins.meta.vrf",
}
