# SPDX-License-Identifier: Apache-2.0
# Fleets sharing session state with real daemons (issue 20): two Apache
# httpd (mod_ssl) instances with one memcached session cache and one ticket
# key file, stock and preloaded side by side (test/fleet_apache.sh); HAProxy
# terminating TLS under the preload, two of them sharing tls-ticket-keys
# (test/fleet_haproxy.sh).  Needs apache2, memcached and haproxy
# (.ci/install-deps); the scripts start their own daemons.
INTEGRATION_SCRIPTS += fleet_apache.sh fleet_haproxy.sh
