"""Test support for pycni's suite, imported as `support.<module>` (tests/ is
on sys.path through pyproject's `pythonpath`).

fixtures     the pytest plugin tests/conftest.py loads: namespaces, CNI and
             plugin dirs, the Go driver, the leak check, the `kernel` marker
sandbox      network namespaces: create, enter, inspect (`ip`), remove
cni          config builders, and readers of what plugins leave on disk
plugin_dirs  CNI_PATH contents: the test plugin, launchers of pycni's plugins
testplugin   the scriptable test plugin (an executable, not imported)
outcomes     ok()/err() assertions on a plugin run's Outcome
bridge       the bridge tests' Net and kernel state readers
host_local   the host-local tests' configs and store readers
faults       the fault matrix's forked runtime, state and full-disk machinery
netlink      a fake netlink socket for codec tests

Imports nothing itself: a child process may import one module cheaply.
"""
