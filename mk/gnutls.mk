# SPDX-License-Identifier: Apache-2.0
# GnuTLS (gnutls-cli / gnutls-serv) as the peer of emsguard in both roles,
# with and without Extended Master Secret (test/gnutls.sh).
INTEGRATION_SCRIPTS += gnutls.sh
