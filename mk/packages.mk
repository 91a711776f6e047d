# SPDX-License-Identifier: Apache-2.0
# The Debian packages, built and tested the way an admin installs them
# (.ci/package-test; needs root and debootstrap, like check-debian13):
#
#   make check-packages [PACKAGES_SUITE=trixie|bookworm]
#                       [PACKAGES_BUILD_ROOT=DIR] [PACKAGES_TEST_ROOT=DIR]
#
# dpkg-buildpackage and lintian run in PACKAGES_BUILD_ROOT (by default the
# Debian 13 root of check-debian13, reused); the packages are then installed
# with apt into a clean minbase root (PACKAGES_TEST_ROOT, made anew from a
# cached debootstrap tarball each run) and test/package_checks.sh runs there.
PACKAGES_SUITE      ?= trixie
PACKAGES_BUILD_ROOT ?= $(if $(filter trixie,$(PACKAGES_SUITE)),$(DEBIAN13_ROOT),/var/tmp/emsguard-$(PACKAGES_SUITE))
PACKAGES_TEST_ROOT  ?= /var/tmp/emsguard-pkgtest-$(PACKAGES_SUITE)

.PHONY: check-packages

check-packages:
	.ci/package-test $(PACKAGES_SUITE) $(PACKAGES_BUILD_ROOT) $(PACKAGES_TEST_ROOT)
