# Static checks, included by the Makefile (`include tools/static.mk`). Uses PY and STAMP.
#
#   make typecheck   mypy on app.py + chalicelib, settings from pyproject.toml [tool.mypy]
#   make bandit      bandit (security lint) on app.py + chalicelib; any finding fails
#   make audit       pip-audit on requirements.txt (the Lambda's runtime dependencies);
#                    skipped with a message (exit 0) when the vulnerability service does not
#                    answer within AUDIT_TIMEOUT seconds (offline machine, CI without egress)
#   make static      all three
#
# A reviewed bandit finding is silenced on its line with `# nosec BXXX - why`.

PY ?= .venv/bin/python
AUDIT_SERVICE ?= pypi
AUDIT_TIMEOUT ?= 5
BANDIT_TARGETS ?= app.py chalicelib
BANDIT_FLAGS ?= -q

ifeq ($(AUDIT_SERVICE),osv)
AUDIT_PROBE_URL ?= https://api.osv.dev/v1/vulns/PYSEC-2023-74
else
AUDIT_PROBE_URL ?= https://pypi.org/pypi/pip/json
endif

# Reachable = a successful answer from the service itself within AUDIT_TIMEOUT (an error
# status may come from a proxy in between, so it counts as unreachable).
define AUDIT_PROBE
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).close()
except Exception as e:
    sys.exit(f"audit: SKIPPED - {sys.argv[1]} gave no usable answer within {sys.argv[2]} s "
             f"({type(e).__name__}: {str(e)[:100]})")
endef
export AUDIT_PROBE

.PHONY: static typecheck bandit audit

static: typecheck bandit audit

typecheck: $(STAMP)
	$(PY) -m mypy --config-file pyproject.toml

bandit: $(STAMP)
	$(PY) -m bandit $(BANDIT_FLAGS) -r $(BANDIT_TARGETS) \
	  -f custom --msg-template "{relpath}:{line}: {test_id} [{severity}/{confidence}] {msg}"

audit: $(STAMP)
	@$(PY) -c "$$AUDIT_PROBE" "$(AUDIT_PROBE_URL)" "$(AUDIT_TIMEOUT)" || exit 0; \
	out=$$(mktemp); \
	$(PY) -m pip_audit -r requirements.txt --vulnerability-service $(AUDIT_SERVICE) \
	  --timeout $(AUDIT_TIMEOUT) --progress-spinner off >$$out 2>&1; rc=$$?; \
	cat $$out; \
	n=$$(grep -c "could not be audited" $$out); \
	if [ "$$n" -gt 0 ]; then \
	  echo "audit: WARNING - $$n dependencies could not be audited (the service does not know these versions)"; \
	fi; \
	rm -f $$out; exit $$rc
