#!/usr/bin/env python3
"""A scriptable CNI plugin for the runtime, CLI and e2e tests (stdlib only).

Installed by the `plugin_dir` fixture under several type names with the
shebang rewritten to the test interpreter. Behaviour comes from the plugin's
own config object:

    {"type": "testplugin", "tag": "p1", "log": "/tmp/.../log.jsonl",
     "ip": "198.18.0.2/24",
     "test": {"add": "ok", "del": "ok", "check": "ok", "gc": "ok", "status": "ok",
              "code": 7, "msg": "boom", "details": "more", "sleep": 0.5,
              "pidfile": "/tmp/.../pid", "wait_for": "/tmp/.../go"}}

Actions: ok, fail (error JSON on stdout, exit 1), stderr (text on stderr
only, exit 1), garbage (non-JSON stdout, exit 1), garbage-ok (non-JSON
stdout, exit 0), noversion (ADD result without cniVersion; `result_version`
sets the version the result is printed in), null (ADD prints
null), stderr-ok (succeeds, chatters on stderr), hang (sleeps forever),
hang-ignore-term (ignores SIGTERM, sleeps forever), sleep (sleeps `sleep`
seconds, then ok), killself (dies of SIGKILL).

Every call appends one JSON line to `log`: cmd, tag, type, env (CNI_*),
stdin (the parsed request), pid, t0, t1. VERSION answers the comma-separated
versions in $TESTPLUGIN_VERSIONS (default: all), or fails like a pre-VERSION
plugin when $TESTPLUGIN_NO_VERSION is set.
"""

import json
import os
import signal
import sys
import time

ALL = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def log(conf, entry):
    path = conf.get("log")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def error(code, msg, details=""):
    doc = {"code": code, "msg": msg}
    if details:
        doc["details"] = details
    sys.stdout.write(json.dumps(doc))
    sys.exit(1)


def add_result(conf, version):
    prev = conf.get("prevResult")
    tag = conf.get("tag", conf.get("type"))
    ifname = os.environ.get("CNI_IFNAME", "")
    ip = conf.get("ip", "198.18.0.2/24")
    if version in ("0.1.0", "0.2.0"):
        result = dict(prev) if prev else {}
        result["cniVersion"] = version
        result.setdefault("ip4", {"ip": ip})
        return result
    result = json.loads(json.dumps(prev)) if prev else {}
    result["cniVersion"] = version
    interfaces = result.setdefault("interfaces", [])
    interfaces.append({"name": f"{tag}-{ifname}", "sandbox": os.environ.get("CNI_NETNS", "")})
    ipc = {"address": ip, "interface": len(interfaces) - 1}
    if version in ("0.3.0", "0.3.1", "0.4.0"):
        ipc["version"] = "6" if ":" in ip else "4"
    result.setdefault("ips", []).append(ipc)
    return result


def main():
    cmd = os.environ.get("CNI_COMMAND", "")
    t0 = time.time()
    if cmd == "VERSION":
        if os.environ.get("TESTPLUGIN_NO_VERSION"):
            error(4, "unknown CNI_COMMAND: VERSION")
        versions = os.environ.get("TESTPLUGIN_VERSIONS")
        supported = versions.split(",") if versions else ALL
        sys.stdout.write(json.dumps({"cniVersion": "1.1.0", "supportedVersions": supported}))
        return
    raw = sys.stdin.buffer.read()
    conf = json.loads(raw)
    test = conf.get("test") or {}
    action = test.get(cmd.lower(), "ok")
    entry = {
        "cmd": cmd,
        "tag": conf.get("tag"),
        "type": os.path.basename(sys.argv[0]),
        "env": {k: v for k, v in os.environ.items() if k.startswith("CNI_")},
        "extra_env": os.environ.get("TESTPLUGIN_EXTRA", ""),
        "stdin": conf,
        "pid": os.getpid(),
        "t0": t0,
    }
    if test.get("pidfile"):
        with open(test["pidfile"], "w") as f:
            f.write(str(os.getpid()))
    if test.get("wait_for"):
        while not os.path.exists(test["wait_for"]):
            time.sleep(0.01)
    if action == "sleep":
        time.sleep(float(test.get("sleep", 0.5)))
        action = "ok"
    entry["t1"] = time.time()
    log(conf, entry)
    version = conf.get("cniVersion") or "0.1.0"
    if action == "fail":
        error(int(test.get("code", 7)), test.get("msg", "boom"), test.get("details", ""))
    if action == "stderr":
        sys.stderr.write(test.get("msg", "something bad happened") + "\n")
        sys.exit(1)
    if action == "garbage":
        sys.stdout.write("this is not json")
        sys.exit(1)
    if action == "garbage-ok":
        sys.stdout.write("this is not json either")
        return
    if action == "killself":
        os.kill(os.getpid(), signal.SIGKILL)
    if action in ("hang", "hang-ignore-term"):
        if action == "hang-ignore-term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.stdout.flush()
        while True:
            time.sleep(1)
    if action == "stderr-ok":
        sys.stderr.write("plugin chatter on stderr\n")
    if cmd == "ADD":
        if action == "null":
            sys.stdout.write("null")
            return
        result = add_result(conf, test.get("result_version") or version)
        if action == "noversion":
            result.pop("cniVersion", None)
        sys.stdout.write(json.dumps(result, indent=4))


if __name__ == "__main__":
    main()
