/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The expectations of check_reg_corpus.c, one per export in test/reg/: the
 * OpenSSL settings `emsguard policy` reports per role, the warnings kept in
 * the policy, the report's Warnings section and what it says of Functions
 * ("{file}" stands for the export's path).
 */
static const struct corpus_case corpus_cases[] = {
    { REGDIR "gpo-cipher-order.reg",
        /* server */
        "    Options           ExtendedMasterSecret,ServerPreference\n"
        "    CipherString      ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-GCM-SHA256\n"
        "    Ciphersuites      (none: no TLS 1.3 suite left)\n"
        "    Groups            P-384:P-256:X25519\n",
        /* client */
        "    Options           ExtendedMasterSecret\n"
        "    CipherString      ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-GCM-SHA256\n"
        "    Ciphersuites      (none: no TLS 1.3 suite left)\n"
        "    Groups            P-384:P-256:X25519\n",
        /* warnings */
        "{file}:4: warning: Functions: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P384' read as 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384' (the curve suffix is not part of the suite in OpenSSL; use EccCurves)\n",
        /* the report's Warnings */
        "\n"
        "  warning: TLS 1.3 is now off for the server and client roles: the cipher suite order (Functions) lists no TLS 1.3 suite (TLS_AES_*, TLS_CHACHA20_*), as lists written before TLS 1.3 do, and OpenSSL negotiates no TLS 1.3 without one; list TLS_AES_256_GCM_SHA384 or TLS_AES_128_GCM_SHA256 in Functions, or switch TLS 1.3 off explicitly (Protocols\\TLS 1.3\\...\\Enabled=0)\n"
        "  {file}:4: warning: Functions: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P384' read as 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384' (the curve suffix is not part of the suite in OpenSSL; use EccCurves)\n",
        /* Functions */
        "CipherString, Ciphersuites, Options ServerPreference (server); the group-policy list (SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002): Schannel uses it whenever it is present" },
    { REGDIR "cmdlet-local.reg",
        /* server */
        "    Options           ExtendedMasterSecret,ServerPreference\n"
        "    CipherString      ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA\n"
        "    Ciphersuites      TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\n",
        /* client */
        "    Options           ExtendedMasterSecret\n"
        "    CipherString      ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA\n"
        "    Ciphersuites      TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\n",
        /* warnings */
        "",
        /* the report's Warnings */
        " none\n",
        /* Functions */
        "CipherString, Ciphersuites, Options ServerPreference (server); the local list (SYSTEM\\CurrentControlSet\\Control\\Cryptography\\Configuration\\Local\\SSL\\00010002, which Enable-TlsCipherSuite edits): no group-policy list is present" },
    { REGDIR "gpo-over-local.utf8.reg",
        /* server */
        "    Options           ExtendedMasterSecret,ServerPreference\n"
        "    CipherString      ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256\n"
        "    Ciphersuites      TLS_AES_128_GCM_SHA256\n",
        /* client */
        "    Options           ExtendedMasterSecret\n"
        "    CipherString      ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256\n"
        "    Ciphersuites      TLS_AES_128_GCM_SHA256\n",
        /* warnings */
        "{file}:9: info: Functions under [...\\Local\\SSL\\00010002] not used: the group-policy list ({file}:6) overrides it, as in Schannel\n",
        /* the report's Warnings */
        "\n"
        "  {file}:9: info: Functions under [...\\Local\\SSL\\00010002] not used: the group-policy list ({file}:6) overrides it, as in Schannel\n",
        /* Functions */
        "CipherString, Ciphersuites, Options ServerPreference (server); the group-policy list (SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002): Schannel uses it whenever it is present, so the local list at {file}:9 is not used" },
    { REGDIR "iis-strict.reg",
        /* server */
        "    Options           ExtendedMasterSecret,ServerPreference\n"
        "    MinProtocol       TLSv1.2\n"
        "    MaxProtocol       TLSv1.3\n"
        "    CipherString      ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:!eNULL:!DES:!RC2:!RC4:!3DES:!MD5:!SHA1\n"
        "    Ciphersuites      TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\n"
        "    DHParameters      smallest ffdhe group of at least 2048 bits\n",
        /* client */
        "    Options           ExtendedMasterSecret\n"
        "    MinProtocol       TLSv1.2\n"
        "    MaxProtocol       TLSv1.3\n"
        "    CipherString      ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:!eNULL:!DES:!RC2:!RC4:!3DES:!MD5:!SHA1\n"
        "    Ciphersuites      TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\n"
        "    SecurityCallback  refuse server DH groups under 2048 bits\n",
        /* warnings */
        "{file}: info: 12 value(s) switch off protocols OpenSSL 3 does not have (Multi-Protocol Unified Hello, PCT 1.0, SSL 2.0); nothing to do\n",
        /* the report's Warnings */
        "\n"
        "  {file}: info: 12 value(s) switch off protocols OpenSSL 3 does not have (Multi-Protocol Unified Hello, PCT 1.0, SSL 2.0); nothing to do\n",
        /* Functions */
        "CipherString, Ciphersuites, Options ServerPreference (server); the group-policy list (SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002): Schannel uses it whenever it is present" },
    { REGDIR "max-compat.regedit4.reg",
        /* server */
        "    Options           ExtendedMasterSecret,ServerPreference,UnsafeLegacyRenegotiation\n"
        "    MinProtocol       TLSv1\n"
        "    MaxProtocol       TLSv1.3\n"
        "    CipherString      ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:AES256-SHA:AES128-SHA:!eNULL:!RC4\n"
        "    Ciphersuites      TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256\n"
        "    Groups            X25519:P-256:P-384:P-521\n"
        "    DHParameters      smallest ffdhe group of at least 1024 bits\n",
        /* client */
        "    Options           ExtendedMasterSecret,UnsafeLegacyRenegotiation,UnsafeLegacyServerConnect\n"
        "    MinProtocol       TLSv1\n"
        "    MaxProtocol       TLSv1.3\n"
        "    CipherString      ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:AES256-SHA:AES128-SHA:!eNULL:!RC4\n"
        "    Ciphersuites      TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256\n"
        "    Groups            X25519:P-256:P-384:P-521\n",
        /* warnings */
        "{file}:43: warning: 'Hashes\\SHA 256\\Enabled' is not a name Schannel reads (it reads 'Hashes\\SHA256\\Enabled'): Windows ignores this value, and so does emsguard\n"
        "{file}:56: warning: Protocols\\Multi-Protocol Unified Hello\\Client\\DisabledByDefault=0: OpenSSL 3 has no Multi-Protocol Unified Hello; it stays off\n"
        "{file}:57: warning: Protocols\\Multi-Protocol Unified Hello\\Client\\Enabled=0xffffffff: OpenSSL 3 has no Multi-Protocol Unified Hello; it stays off\n"
        "{file}:73: warning: Protocols\\SSL 3.0\\Client\\Enabled=0xffffffff: OpenSSL 3 has no SSL 3.0; it stays off\n"
        "{file}:77: warning: Protocols\\SSL 3.0\\Server\\Enabled=0xffffffff: OpenSSL 3 has no SSL 3.0; it stays off\n"
        "{file}:81: warning: Protocols\\TLS 1.0\\Client\\Enabled=0xffffffff: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, and emsguard never lowers the level\n"
        "{file}:85: warning: Protocols\\TLS 1.0\\Server\\Enabled=0xffffffff: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, and emsguard never lowers the level\n"
        "{file}:89: warning: Protocols\\TLS 1.1\\Client\\Enabled=0xffffffff: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, and emsguard never lowers the level\n"
        "{file}:93: warning: Protocols\\TLS 1.1\\Server\\Enabled=0xffffffff: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, and emsguard never lowers the level\n"
        "{file}:104: warning: Functions: cipher suite 'TLS_RSA_WITH_RC4_128_SHA' is not implemented by OpenSSL; ignored\n"
        "{file}: info: 6 value(s) switch off protocols OpenSSL 3 does not have (Multi-Protocol Unified Hello, PCT 1.0, SSL 2.0); nothing to do\n",
        /* the report's Warnings */
        "\n"
        "  {file}:43: warning: 'Hashes\\SHA 256\\Enabled' is not a name Schannel reads (it reads 'Hashes\\SHA256\\Enabled'): Windows ignores this value, and so does emsguard\n"
        "  {file}:56: warning: Protocols\\Multi-Protocol Unified Hello\\Client\\DisabledByDefault=0: OpenSSL 3 has no Multi-Protocol Unified Hello; it stays off\n"
        "  {file}:57: warning: Protocols\\Multi-Protocol Unified Hello\\Client\\Enabled=0xffffffff: OpenSSL 3 has no Multi-Protocol Unified Hello; it stays off\n"
        "  {file}:73: warning: Protocols\\SSL 3.0\\Client\\Enabled=0xffffffff: OpenSSL 3 has no SSL 3.0; it stays off\n"
        "  {file}:77: warning: Protocols\\SSL 3.0\\Server\\Enabled=0xffffffff: OpenSSL 3 has no SSL 3.0; it stays off\n"
        "  {file}:81: warning: Protocols\\TLS 1.0\\Client\\Enabled=0xffffffff: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, and emsguard never lowers the level\n"
        "  {file}:85: warning: Protocols\\TLS 1.0\\Server\\Enabled=0xffffffff: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, and emsguard never lowers the level\n"
        "  {file}:89: warning: Protocols\\TLS 1.1\\Client\\Enabled=0xffffffff: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, and emsguard never lowers the level\n"
        "  {file}:93: warning: Protocols\\TLS 1.1\\Server\\Enabled=0xffffffff: OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0 (CipherString @SECLEVEL=0), except with RSA key exchange, and emsguard never lowers the level\n"
        "  {file}:104: warning: Functions: cipher suite 'TLS_RSA_WITH_RC4_128_SHA' is not implemented by OpenSSL; ignored\n"
        "  {file}: info: 6 value(s) switch off protocols OpenSSL 3 does not have (Multi-Protocol Unified Hello, PCT 1.0, SSL 2.0); nothing to do\n",
        /* Functions */
        "CipherString, Ciphersuites, Options ServerPreference (server); the group-policy list (SOFTWARE\\Policies\\Microsoft\\Cryptography\\Configuration\\SSL\\00010002): Schannel uses it whenever it is present" },
    { REGDIR "mixed-keys.utf8.reg",
        /* server */
        "    Options           ExtendedMasterSecret\n"
        "    MinProtocol       TLSv1.2\n"
        "    MaxProtocol       TLSv1.3\n",
        /* client */
        "    Options           ExtendedMasterSecret\n"
        "    MinProtocol       TLSv1\n"
        "    MaxProtocol       TLSv1.3\n"
        "    VerifyCallback    refuse peer RSA certificate keys under 2048 bits\n",
        /* warnings */
        "{file}:13: warning: Lsa\\FipsAlgorithmPolicy\\Enabled=1: Windows' FIPS mode limits Schannel to FIPS-approved algorithms; emsguard does not map it (OpenSSL's FIPS provider is chosen in openssl.cnf); ignored\n"
        "{file}: info: 10 value(s) outside the SCHANNEL and cipher suite (SSL\\00010002) keys ignored\n",
        /* the report's Warnings */
        "\n"
        "  {file}:13: warning: Lsa\\FipsAlgorithmPolicy\\Enabled=1: Windows' FIPS mode limits Schannel to FIPS-approved algorithms; emsguard does not map it (OpenSSL's FIPS provider is chosen in openssl.cnf); ignored\n"
        "  {file}: info: 10 value(s) outside the SCHANNEL and cipher suite (SSL\\00010002) keys ignored\n",
        /* Functions */
        NULL },
};
