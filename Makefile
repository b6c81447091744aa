# pycni: `make test` installs what the suite needs on a fresh Debian 12
# machine (as root) and runs it; `make demo` shows the main job.

PYTHON ?= /usr/bin/python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEBS   := iproute2 nftables iptables dnsmasq-base containernetworking-plugins python3-venv hyperfine golang-go golang-github-appc-cni-dev time
STAMP  := $(VENV)/.installed

.PHONY: test demo lint bench deps venv clean

deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: deps $(STAMP)

lint: venv
	$(VENV)/bin/ruff check src tests examples bench
	$(VENV)/bin/ruff format --check src tests examples bench

test: venv lint
	$(PY) -m pytest -q -p no:cacheprovider

demo: venv
	$(VENV)/bin/pycni demo

bench: venv
	$(PY) bench/bench_plugins.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
