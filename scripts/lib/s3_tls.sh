# shellcheck shell=bash
#
# scripts/lib/s3_tls.sh - the self-signed certificate and keystore an
# S3Proxy serves TLS with: the local stack's S3 server
# (scripts/lib/s3_server.sh) and compose-test's (tests/compose/s3). Its
# clients are pgBackRest, which trusts the certificate itself as its CA
# file, and curl.

# s3_tls_make DIR CN SUBJECT_ALT_NAMES - DIR/key.pem, DIR/cert.pem (for
# CN, with SUBJECT_ALT_NAMES, e.g. "IP:127.0.0.1,DNS:localhost"),
# DIR/keystore.p12 (the PKCS#12 keystore S3Proxy reads) and
# DIR/keystore_password, made with umask 077; status 1 when openssl failed.
# pgBackRest 2.45 matches a host against DNS names only: an address it
# connects to must be among them as DNS:ADDRESS too.
s3_tls_make() {
    local dir="$1" cn="$2" names="$3"
    (
        umask 077
        mkdir -p "$dir"
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/keystore_password"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$cn" \
            -addext "subjectAltName=$names" \
            -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
        openssl pkcs12 -export -name s3proxy -in "$dir/cert.pem" -inkey "$dir/key.pem" \
            -out "$dir/keystore.p12" -passout "file:$dir/keystore_password"
    )
}
