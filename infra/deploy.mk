# Packaging, infrastructure checks and deployment. Included by the Makefile
# (`-include infra/deploy.mk`); uses its VENV/PY when set. docs/deploy.md walks through
# a first deploy. Everything that talks to AWS runs in us-east-1 (see infra/deploy.py).
#
#   make package       STAGE=prod   build/prod/template.json + deployment.zip (offline)
#   make infra-check                package dev+prod, cfn-lint + checkov them (offline)
#   make scan-venv                  build/.venv-scan: checkov + SAM translator (pins clash with moto's)
#   make bootstrap                  once per account: artifacts bucket + API Gateway log role
#   make init-secrets  STAGE=prod   create the SSM SecureStrings (origin secret, Turnstile)
#   make preflight     STAGE=prod   read-only checks; exits non-zero at the first blocker
#   make deploy        STAGE=prod   package + preflight + change set (boto3, infra/deploy.py)
#   make publish-site  STAGE=prod   upload website/ + generated config.json, invalidate
#   make smoke         STAGE=prod   end-to-end checks; SMOKE_ARGS="--site-url U --api-url U ..."
#   make import-tables STAGE=prod   bring tables kept by a teardown back under the stack
#   make teardown      STAGE=prod   empty the site bucket and delete the stack (tables stay)
#   make rehearse     [STAGE=prod]  all of the above twice, offline, on moto (loopback only)

VENV ?= .venv
PY ?= $(VENV)/bin/python
# under build/: gitignored, so ruff/git never look inside it; `make clean` drops it
SCAN_VENV ?= build/.venv-scan
SCAN_PYTHON ?= python3
SCAN_STAMP := $(SCAN_VENV)/.installed
INFRA_STAGES := dev prod
# STAGE may be `local` from the Makefile; cloud targets insist on dev or prod.
CLOUD_STAGE = $(if $(filter $(STAGE),$(INFRA_STAGES)),$(STAGE),$(error STAGE=dev or STAGE=prod, got "$(STAGE)"))
BUILD_DIR = build/$(CLOUD_STAGE)
# checkov must not phone home (no network here; no platform key anyway)
CHECKOV_ENV := BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false

.PHONY: package lint-infra scan-venv scan-infra infra-check bootstrap init-secrets \
	preflight deploy publish-site smoke outputs import-tables teardown rehearse

# $(STAMP) is the Makefile's "venv installed" marker, when it defines one
package: $(STAMP)
	$(PY) infra/package.py --stage $(CLOUD_STAGE) --out $(BUILD_DIR)

lint-infra: package
	$(VENV)/bin/cfn-lint $(BUILD_DIR)/template.json infra/bootstrap.yaml

$(SCAN_STAMP): infra/requirements-scan.txt
	test -x $(SCAN_VENV)/bin/python || $(SCAN_PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install -q --upgrade pip
	$(SCAN_VENV)/bin/python -m pip install -q -r infra/requirements-scan.txt
	touch $(SCAN_STAMP)

scan-venv: $(SCAN_STAMP)

scan-infra: package $(SCAN_STAMP)
	$(CHECKOV_ENV) $(SCAN_VENV)/bin/checkov --quiet --compact --skip-download \
		--framework cloudformation -f $(BUILD_DIR)/template.json -f infra/bootstrap.yaml

infra-check: $(SCAN_STAMP)
	$(MAKE) --no-print-directory lint-infra scan-infra STAGE=dev
	$(MAKE) --no-print-directory lint-infra scan-infra STAGE=prod

bootstrap:
	$(PY) infra/deploy.py bootstrap

init-secrets:
	$(PY) infra/deploy.py init-secrets --stage $(CLOUD_STAGE) $(if $(ROTATE_ORIGIN),--rotate-origin)

preflight:
	$(PY) infra/deploy.py preflight --stage $(CLOUD_STAGE)

deploy: package
	$(PY) infra/deploy.py preflight --stage $(CLOUD_STAGE)
	$(PY) infra/deploy.py deploy --stage $(CLOUD_STAGE)

publish-site:
	$(PY) infra/deploy.py publish-site --stage $(CLOUD_STAGE) $(if $(DRY_RUN),--dry-run)

smoke:
	$(PY) infra/deploy.py smoke --stage $(CLOUD_STAGE) $(SMOKE_ARGS)

import-tables:
	$(PY) infra/deploy.py import-tables --stage $(CLOUD_STAGE)

# The rehearsal deploys the real package of a cloud stage (prod unless STAGE says dev).
REHEARSE_STAGE = $(if $(filter $(STAGE),$(INFRA_STAGES)),$(STAGE),prod)
rehearse: $(SCAN_STAMP)
	$(MAKE) --no-print-directory package STAGE=$(REHEARSE_STAGE)
	$(PY) infra/rehearse.py --stage $(REHEARSE_STAGE) --package-dir build/$(REHEARSE_STAGE)

outputs:
	$(PY) infra/deploy.py outputs --stage $(CLOUD_STAGE)

teardown:
	$(PY) infra/deploy.py teardown --stage $(CLOUD_STAGE) --yes-delete "$(CONFIRM)"
