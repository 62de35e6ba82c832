/*
 * graph_media.h - the media part of graph_test_server (Meta's Cloud API
 * "Media" as its documentation describes it): media ids the test
 * registers, GET /{version}/{media-id} answering a download URL on the
 * same server, the download itself, with the faults a test asks for and
 * the counts it checks. See graph_media.c.
 */
#ifndef GRAPH_MEDIA_H
#define GRAPH_MEDIA_H

#include <microhttpd.h>

/* --media F (the registry: lines "<media_id> <mime_type> <fault> <file>")
 * and --media-url-ttl-ms N (default 300000: Meta's five minutes). 1 when
 * name is one of them and value is good. */
int gm_option(const char *name, const char *value);
/* The server's port, for the download URLs it hands out. */
void gm_set_port(int port);
/* token_ok(id, authorization header): the server's token check (id NULL:
 * any number's token). */
typedef int (*gm_token_check)(const char *id, const char *auth);
/* Answer a GET that is the media API's (GET /{version}/{media-id}, the
 * download, GET /_media/counts) into *out; 0 when url is none of them. */
int gm_route(struct MHD_Connection *c, const char *url, gm_token_check token_ok,
             enum MHD_Result *out);
void gm_free(void);

#endif
