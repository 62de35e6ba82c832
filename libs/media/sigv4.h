/*
 * sigv4.h - AWS Signature Version 4 presigned URLs (query-string
 * authentication), which libcurl does not make.
 *
 * libcurl signs the requests the store sends itself (CURLOPT_AWS_SIGV4);
 * what it cannot do is hand a third party a URL that carries the signature
 * in its query (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
 * X-Amz-Expires, X-Amz-SignedHeaders=host, X-Amz-Signature), which is how
 * the CRM opens an object without our credentials. The canonical request,
 * string to sign and signing key follow AWS's "Authenticating Requests:
 * Using Query Parameters (AWS Signature Version 4)"; tests check them
 * against the example published there (examplebucket/test.txt) and against
 * a real S3-compatible server.
 */
#ifndef BZ_MEDIA_SIGV4_H
#define BZ_MEDIA_SIGV4_H

#include <stdint.h>
#include <time.h>

#include "core/status.h"

typedef struct bz_sigv4_credentials {
    const char *access_key;
    const char *secret_key;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
} bz_sigv4_credentials;

/* A presigned URL for method (GET, PUT) on endpoint_url + path: endpoint
 * "http://127.0.0.1:9000" (path style) or "https://examplebucket.s3.amazonaws.com"
 * (virtual host style), path "/bucket/key" or "/key", already in the form
 * the server sees it (each segment URI-encoded by the caller is fine: the
 * canonical URI encodes it once more only where S3 asks). now is the
 * signing time, expires_s its validity (1 to 604800). *out is heap memory:
 * free() it. */
bz_status bz_sigv4_presign(const bz_sigv4_credentials *cred, const char *method,
                           const char *endpoint_url, const char *path, time_t now,
                           int64_t expires_s, char **out, bz_error *err);

#endif
