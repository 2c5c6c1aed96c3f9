# The two commands of the README, and the setup they share. Everything the project needs is
# installed from here, so a fresh machine needs nothing by hand but python3 (3.11+) and make.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SERVERS := $(VENV)/.test-servers
REPORT ?= reports/demo

.PHONY: setup system demo qemu test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

## Python packages of the real servers the test suite starts (after the Debian packages they build with).
$(SERVERS): pyproject.toml $(STAMP)
	bash scripts/install-system-packages.sh
	$(PY) -m pip install --quiet -e '.[dev,test-servers]'
	touch $@

## Debian packages for the QEMU board (qemu-system-arm, u-boot-qemu, mtools, ...), when missing.
system:
	bash scripts/install-system-packages.sh

## The main job against the built-in virtual NanoPi M6; writes $(REPORT)/report.html.
demo: setup
	$(VENV)/bin/pytest --board nanopi-m6 --bench sim -m bootloader --report-dir $(REPORT)

## The gates against the QEMU board: Debian's real U-Boot and Linux.
qemu: setup system
	$(VENV)/bin/pytest --board qemu-arm64 --bench qemu --report-dir reports/qemu

## The whole test suite (what CI runs).
test: setup system $(SERVERS) lint
	$(VENV)/bin/pytest tests; status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	  exit $$status

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) benchmarks/console_throughput.py
	$(PY) benchmarks/console_throughput.py --mode expect-scaling

clean:
	rm -rf $(VENV) reports
