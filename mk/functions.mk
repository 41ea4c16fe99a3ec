# The Azure Functions app: local debugging with Core Tools and the deployable zip.
# Included by the root Makefile (-include mk/*.mk); also usable alone (make -f mk/functions.mk …).
#
#   make func           build (debug), lay the app out in target/func-app/ and run `func start`
#                       there against Azurite (start it first: see docs/functions.md)
#   make package        the shipped build (BENCHMARKS.md, "The shipped build"): release, linked
#                       against glibc 2.28 with cargo-zigbuild (zig and cargo-zigbuild from PyPI,
#                       pinned, into .venv-package/), its debug information moved to
#                       target/functions/retail-ingest.debug, then target/functions/retail-ingest.zip.
#                       PACKAGE_TARGET=x86_64-unknown-linux-musl builds the static musl binary instead.
#   make package-zip    just the zip, from PACKAGE_BIN (any build; the layout test uses the debug one)
#
# The app root, in the zip and in target/func-app/, is what the host expects:
#   host.json, <Function>/function.json for each function, retail-ingest (mode 0755).
# local.settings.json is never packaged; `make func` copies it (or the .example) for Core Tools.

FUNC_FUNCTIONS   := IngestFunction ReingestFunction IngestDateFunction RunStatusFunction SweepFunction OverviewFunction
FUNC_APP_DIR     ?= target/func-app
PACKAGE_TARGET   ?= x86_64-unknown-linux-gnu
# The newest glibc the binary may need: Debian 10's (Functions v4's Linux images run Debian 11 or 12).
PACKAGE_GLIBC    ?= 2.28
PACKAGE_VENV     ?= .venv-package
PACKAGE_TOOLS    ?= ziglang==0.17.1 cargo-zigbuild==0.24.1
PACKAGE_BUILT    := target/$(PACKAGE_TARGET)/release/retail-ingest
PACKAGE_BIN      ?= target/functions/retail-ingest
PACKAGE_DIR      ?= target/functions/app
PACKAGE_ZIP      ?= target/functions/retail-ingest.zip
FUNC             ?= func
FUNC_PORT        ?= 7071

.PHONY: func func-app package package-build package-zip

# Copies the app root ($(1): destination) from the repository and $(2) (the executable).
define func_layout
	rm -rf $(1)
	mkdir -p $(1)
	cp host.json $(1)/host.json
	for f in $(FUNC_FUNCTIONS); do mkdir -p $(1)/$$f && cp $$f/function.json $(1)/$$f/function.json || exit 1; done
	cp $(2) $(1)/retail-ingest
	chmod 0755 $(1)/retail-ingest
endef

func-app: ## build (debug) and lay the Functions app out in target/func-app/
	cargo build --bin retail-ingest
	$(call func_layout,$(FUNC_APP_DIR),target/debug/retail-ingest)
	if [ -f local.settings.json ]; then cp local.settings.json $(FUNC_APP_DIR)/; \
	  else cp local.settings.json.example $(FUNC_APP_DIR)/local.settings.json; fi
	@echo "func-app: $(FUNC_APP_DIR) is ready"

func: func-app ## run the app with Core Tools (func start) against Azurite: docs/functions.md
	@command -v $(FUNC) >/dev/null || { echo "func: Azure Functions Core Tools v4 ('$(FUNC)') is not installed: npm install -g azure-functions-core-tools@4 (see docs/functions.md)"; exit 1; }
	@curl -s -o /dev/null http://127.0.0.1:10000/ || echo "func: warning: nothing answers on 127.0.0.1:10000; start Azurite first (docs/functions.md)"
	cd $(FUNC_APP_DIR) && $(FUNC) start --custom --port $(FUNC_PORT)

$(PACKAGE_VENV)/.installed: mk/functions.mk
	rm -rf $(PACKAGE_VENV)
	python3 -m venv $(PACKAGE_VENV)
	$(PACKAGE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary=:all: $(PACKAGE_TOOLS)
	echo "$(PACKAGE_TOOLS)" > $@

package-build: $(if $(findstring musl,$(PACKAGE_TARGET)),,$(PACKAGE_VENV)/.installed)
	@rustup target list --installed | grep -x '$(PACKAGE_TARGET)' >/dev/null || rustup target add $(PACKAGE_TARGET)
ifneq (,$(findstring musl,$(PACKAGE_TARGET)))
	@command -v musl-gcc >/dev/null || { \
	  echo "package: musl-gcc is missing (C code of zstd and ring is built for musl): apt-get install musl-tools"; exit 1; }
	cargo build --release --locked --target $(PACKAGE_TARGET) --bin retail-ingest
	@file $(PACKAGE_BUILT) | grep -E 'statically linked|static-pie linked' >/dev/null || { \
	  echo "package: $(PACKAGE_BUILT) is not statically linked"; file $(PACKAGE_BUILT); exit 1; }
else
	PATH="$(abspath $(PACKAGE_VENV))/bin:$$PATH" cargo-zigbuild build --release --locked \
	  --target $(PACKAGE_TARGET).$(PACKAGE_GLIBC) --bin retail-ingest
	@newest="$$(objdump -T $(PACKAGE_BUILT) | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"; \
	  echo "package: $(PACKAGE_BUILT) needs $$newest at most"; \
	  test "$$(printf '%s\n' "$$newest" GLIBC_$(PACKAGE_GLIBC) | sort -V | tail -1)" = GLIBC_$(PACKAGE_GLIBC) || { \
	  echo "package: $(PACKAGE_BUILT) needs $$newest, newer than GLIBC_$(PACKAGE_GLIBC)"; exit 1; }
endif

# The shipped binary has no debug information; it stays beside it (retail-ingest.debug, found
# by gdb and perf through the debug link) for profiles and crash reports. The symbol table stays
# in the binary, so a panic's backtrace still names functions.
package: package-build ## the shipped build (glibc 2.28, no debug info) and target/functions/retail-ingest.zip
	mkdir -p $(dir $(PACKAGE_BIN))
	objcopy --only-keep-debug $(PACKAGE_BUILT) $(PACKAGE_BIN).debug
	objcopy --strip-debug --add-gnu-debuglink=$(PACKAGE_BIN).debug $(PACKAGE_BUILT) $(PACKAGE_BIN)
	chmod 0755 $(PACKAGE_BIN)
	$(MAKE) -f mk/functions.mk package-zip PACKAGE_BIN=$(PACKAGE_BIN) PACKAGE_ZIP=$(PACKAGE_ZIP) PACKAGE_DIR=$(PACKAGE_DIR)
	@ls -l $(PACKAGE_BUILT) $(PACKAGE_BIN) $(PACKAGE_BIN).debug $(PACKAGE_ZIP)

# zip -X: no extra attributes (steadier output); the Unix mode, and so the run bit, is kept.
package-zip: ## the zip alone, from PACKAGE_BIN (any build of retail-ingest)
	@test -x '$(PACKAGE_BIN)' || { echo "package-zip: no executable at PACKAGE_BIN=$(PACKAGE_BIN)"; exit 1; }
	$(call func_layout,$(PACKAGE_DIR),$(PACKAGE_BIN))
	mkdir -p $(dir $(PACKAGE_ZIP))
	rm -f $(PACKAGE_ZIP)
	cd $(PACKAGE_DIR) && zip -q -X -r $(abspath $(PACKAGE_ZIP)) host.json retail-ingest $(FUNC_FUNCTIONS)
	@echo "package-zip: $(PACKAGE_ZIP)"
	@unzip -Z $(PACKAGE_ZIP) | sed -n '3,$$p'
