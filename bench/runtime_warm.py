"""A warm pycni runtime for bench_runtime.py: pycni.runtime used as a
library by a long-lived process, as containerd and CRI-O hold Go's libcni.

Run with the installation's interpreter and `-I -S`; arguments: the
installation's package dir (`<bin>/.pycni`), the config dir, the cache dir
and the plugin dir. Reads `add|del <network> <netns path>` lines on stdin,
answers each with `ok` or `error <message>` once the call has returned. One
ForkServerExecutor serves every call, so plugins run as forks of a server
that has learned their imports.
"""

import sys


def main() -> None:
    lib, conf_dir, cache_dir, bin_dir = sys.argv[1:5]
    sys.path.insert(0, lib)
    from pycni.launch import activate_bundle

    activate_bundle()
    import os

    from pycni.plugins.forkserver import ForkServerExecutor
    from pycni.runtime import CNIConfig, RuntimeConf, load_network_conf
    from pycni.spec.jsonutil import go_loads

    caps = go_loads(os.environ.get("CAP_ARGS", "{}"))
    executor = ForkServerExecutor()
    executor.start()
    cni = CNIConfig([bin_dir], cache_dir=cache_dir, executor=executor)
    nets = {}
    for line in sys.stdin:
        verb, name, path = line.split()
        net = nets.get(name) or nets.setdefault(name, load_network_conf(conf_dir, name))
        rt = RuntimeConf(os.path.basename(path), path, "eth0", capability_args=caps)
        try:
            if verb == "add":
                cni.add_network_list(net, rt)
            else:
                cni.del_network_list(net, rt)
            answer = "ok"
        except Exception as err:  # reported to the bench, which stops
            answer = f"error {err}".replace("\n", " ")
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    executor.close()


if __name__ == "__main__":
    main()
