# SPDX-License-Identifier: Apache-2.0
# The whole test suite on other Debian releases, in a root made with
# debootstrap on this machine (.ci/debian-root: needs root; reuses the root
# when it exists, so the second run skips debootstrap and most installs).
#
#   make check-debian13 [DEBIAN13_ROOT=DIR]           Debian 13, OpenSSL 3.5, gcc 14
#   make check-debian-testing [DEBIAN_TESTING_ROOT=DIR]  Debian testing (OpenSSL 3.6)
#
# Both run the README's install step and `make check` in a fresh copy of
# this checkout inside the root; CI runs check-debian13 (.ci/run).
DEBIAN13_ROOT       ?= /var/tmp/emsguard-debian13
DEBIAN_TESTING_ROOT ?= /var/tmp/emsguard-debian-testing

.PHONY: check-debian13 check-debian-testing

check-debian13:
	.ci/debian-root trixie $(DEBIAN13_ROOT)

check-debian-testing:
	.ci/debian-root testing $(DEBIAN_TESTING_ROOT)
