# hutch: the developer's entry points. Run as root on Debian 12 (the tests need real namespaces and mounts).

# Debian's interpreter (static, PGO+LTO) starts faster than a pyenv build; README.md has the numbers.
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_BUNDLE ?= /tmp/hutch-demo
BENCH ?= runtime
BENCH_ARGS ?=

# Debian packages the tests, the demo and the benchmarks use (README.md says why each is there).
DEB_PACKAGES := runc crun podman conmon runsc containerd skopeo busybox-static umoci docker-registry \
	containernetworking-plugins catatonit uidmap libseccomp2 iproute2 python3-venv strace apache2-utils openssl \
	aardvark-dns iptables debootstrap

.DEFAULT_GOAL := help
.PHONY: help deps venv lint fmt test demo bench clean

help:
	@echo "hutch: a Linux container platform in Python"
	@echo
	@echo "  make demo    install what is needed, build a busybox bundle in $(DEMO_BUNDLE), run it with hutch-runtime"
	@echo "  make test    install what is needed, lint, then run the whole test suite (as root)"
	@echo "  make deps    apt-get install the Debian packages the tests use (only the missing ones)"
	@echo "  make venv    create $(VENV) with hutch (editable) and the dev tools; then $(BIN)/hutch-runtime works"
	@echo "  make lint    ruff format --check, ruff check, mypy over src/"
	@echo "  make fmt     ruff format and ruff check --fix"
	@echo "  make bench   time hutch against the reference tool: BENCH=runtime|seccomp|engine|network|pull"
	@echo "               (default runtime; BENCH_ARGS='--rounds 50')"
	@echo "  make clean   remove $(VENV) and caches"

deps:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q$$missing; \
	fi

venv: $(VENV)/.launchers

# Reinstalled when pyproject.toml changes; the editable install picks up source changes by itself.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# The lean launchers (pip's install writes its scripts over them), and the module cache both use, $(VENV)/lib/hutch.modules
# (see hutch/modcache.py), written again whenever a source under src/hutch changes: a module whose source changed
# is imported from its source anyway, but only a fresh file saves the import's time.
HUTCH_SOURCES := $(shell find src/hutch -name '*.py')
$(VENV)/.launchers: $(VENV)/.installed scripts/write-launcher $(HUTCH_SOURCES)
	$(BIN)/python scripts/write-launcher $(BIN)/python $(BIN)/hutch hutch.cli.main --site-packages --code hutch
	$(BIN)/python scripts/write-launcher $(BIN)/python $(BIN)/hutch-runtime hutch.runtime.cli \
		--first hutch.runtime.prespawn:early --code hutch
	touch $@

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy src

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits 5 when it collected no test: a non-zero exit, so the target fails.
test: deps venv lint
	$(BIN)/pytest tests

# The runtime on its own (a bundle), then the engine (an image imported from the same rootfs, run with podman's
# defaults: capabilities, masked paths, seccomp, the default bridge network, hutch0).
demo: deps venv
	$(BIN)/python scripts/make-bundle --runtime-bin $(BIN)/hutch-runtime $(DEMO_BUNDLE)
	$(BIN)/hutch-runtime run -b $(DEMO_BUNDLE) demo-$$$$
	tar -C $(DEMO_BUNDLE)/rootfs -c . | $(BIN)/hutch --root $(DEMO_BUNDLE)-storage import -q - localhost/busybox:demo
	$(BIN)/hutch --root $(DEMO_BUNDLE)-storage run --rm localhost/busybox:demo \
		sh -c 'echo hello from hutch run; id; grep -E "^(Seccomp|CapEff):" /proc/self/status; ip addr 2>/dev/null | grep -c UP'

# One of bench/: runtime (against runc), seccomp (against runc, podman's profile), engine (run --rm, ps -a and
# a detached container's monitor against podman), network (run --rm on the bridge against podman), pull
# (a Debian minbase image from a local registry against podman; debootstrap needs a Debian mirror once).
bench: deps venv
	$(BIN)/python bench/$(BENCH) $(BENCH_ARGS)

clean:
	-umount $(BIN)/hutch-python 2>/dev/null
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +
