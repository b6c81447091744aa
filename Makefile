# pycni: `make test` installs what the suite needs on a fresh Debian 12
# machine (as root) and runs it; `make demo` shows the main job.

PYTHON ?= /usr/bin/python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEBS   := iproute2 nftables iptables dnsmasq-base containernetworking-plugins python3-venv hyperfine golang-go golang-github-appc-cni-dev time podman containerd busybox-static postgresql python3-psycopg
STAMP  := $(VENV)/.installed

.PHONY: test test-unit test-matrix demo demo-cluster lint bench bench-versions deps venv clean

# Every CPython pycni supports, found under the pyenv root (newest patch of each).
MATRIX_VERSIONS := 3.9 3.10 3.11 3.12 3.13
PYENV_ROOT ?= $(HOME)/.pyenv

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
	$(VENV)/bin/mypy

test: venv lint
	$(PY) -m pytest -q -p no:cacheprovider

# The tests that need neither root nor network namespaces (those marked
# `kernel` are deselected, see tests/support/fixtures.py), as any user and
# without Debian packages: the venv of `make venv`, or one made here.
test-unit:
	@[ -f $(STAMP) ] || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q -e '.[dev]' && touch $(STAMP); }
	$(PY) -m pytest -q -p no:cacheprovider -m "not kernel"

# The suite on each supported interpreter: the plugins it runs, the plugin dir
# it installs (PYCNI_TEST_PYTHON) and the Go-driver interop all use that version.
test-matrix: deps
	@set -e; for v in $(MATRIX_VERSIONS); do \
	  py=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python$$v 2>/dev/null | sort -V | tail -n 1); \
	  if [ -z "$$py" ]; then echo "test-matrix: no Python $$v under $(PYENV_ROOT)/versions"; exit 1; fi; \
	  venv=.venv-matrix/$$v; \
	  if [ ! -f $$venv/.installed ] || [ pyproject.toml -nt $$venv/.installed ]; then \
	    rm -rf $$venv; $$py -m venv $$venv; \
	    $$venv/bin/python -m pip install -q -e '.[dev]' >$$venv.pip.log 2>&1 || { cat $$venv.pip.log; exit 1; }; \
	    touch $$venv/.installed; \
	  fi; \
	  echo "== Python $$v: $$py"; \
	  PYCNI_TEST_PYTHON=$$py $$venv/bin/python -m pytest -q -p no:cacheprovider; \
	done

demo: venv
	$(VENV)/bin/pycni demo
	$(VENV)/bin/pycni demo dhcp

# three nodes leasing from one PostgreSQL pool (sql IPAM), all in a sandbox
demo-cluster: venv
	$(VENV)/bin/pycni demo cluster

bench: venv
	$(PY) bench/bench_plugins.py
	$(PY) bench/bench_chain.py
	$(PY) bench/bench_runtime.py

bench-versions: venv
	$(PY) bench/bench_versions.py --pyenv-root $(PYENV_ROOT) $(MATRIX_VERSIONS)

clean:
	rm -rf $(VENV) .venv-matrix build *.egg-info src/*.egg-info
