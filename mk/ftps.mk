# SPDX-License-Identifier: Apache-2.0
# FTPS with a real vsftpd that requires data-connection session reuse
# (require_ssl_reuse=YES) against curl with and without the preload policy.
# Needs $(BUILD)/libemsguard-preload.so and libemsguard.so.0, built by `all`.
INTEGRATION_SCRIPTS += vsftpd.sh
