# Fuzzing (issue 5): cargo-fuzz targets in fuzz/ (its own workspace, outside the main build).
#
#   make fuzz              run every target for FUZZ_SECONDS (default 180) each
#   make fuzz FUZZ_TARGETS=csv_file FUZZ_SECONDS=600
#
# cargo-fuzz is installed from crates.io if missing. libFuzzer needs a nightly toolchain: the
# nightly one when rustup has it, else the stable toolchain with RUSTC_BOOTSTRAP=1 (the usual
# workaround where no nightly can be fetched). The corpus grows in fuzz/corpus/<target>
# (ignored by git), seeded from fuzz/seeds/<target>; crashes land in fuzz/artifacts/<target>.
# CI does not run this.

FUZZ_SECONDS ?= 180
FUZZ_TARGETS ?= csv_file host_envelope
FUZZ_TOOLCHAIN := $(shell rustup toolchain list 2>/dev/null | grep -q '^nightly' && echo '+nightly')

.PHONY: fuzz

fuzz: ## run the cargo-fuzz targets (FUZZ_SECONDS each; nightly or RUSTC_BOOTSTRAP=1)
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@cd fuzz && for target in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$target; \
	  echo "make fuzz: $$target for $(FUZZ_SECONDS) s ($(if $(FUZZ_TOOLCHAIN),nightly,stable with RUSTC_BOOTSTRAP=1))"; \
	  $(if $(FUZZ_TOOLCHAIN),,RUSTC_BOOTSTRAP=1) $(CARGO) $(FUZZ_TOOLCHAIN) fuzz run -O $$target \
	    corpus/$$target seeds/$$target -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
	    -max_len=65536 -timeout=20 -print_final_stats=1 || exit $$?; \
	done
