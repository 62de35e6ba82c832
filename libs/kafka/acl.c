/*
 * acl.c - Kafka ACL bindings from the matrix of ARCHITECTURE.md §9.1 (see
 * acl.h), and creating them with librdkafka's Admin API.
 *
 * The matrix arrives as text cells (acl_matrix.inc, generated from the
 * document at build time): each cell is a comma-separated list of items,
 * parsed here when bindings are asked for. A cell that does not parse is an
 * internal error (the document is wrong); test_kafka_acl instantiates every
 * row, so such a document fails the unit tests rather than a deployment.
 */
#include "kafka/acl.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/grow.h"
#include "kafka/producer.h"

typedef struct matrix_row {
    const char *principal, *writes, *reads, *groups, *transactional_ids, *cluster;
} matrix_row;

static const matrix_row matrix[] = {
#include "acl_matrix.inc"
};
#define MATRIX_ROWS (sizeof matrix / sizeof matrix[0])

#define TEMPLATE_ID "<id>"
#define ITEM_MAX 320
#define CLUSTER_NAME "kafka-cluster"

static int is_template(const matrix_row *row)
{
    return strstr(row->principal, TEMPLATE_ID) != NULL;
}

static bz_status push(bz_kafka_acl_list *list, const bz_kafka_acl *acl, bz_error *err)
{
    if (!bz_grow((void **)&list->items, &list->cap, list->count + 1, sizeof *list->items, 64))
        return bz_fail(err, BZ_ERR_NOMEM, "kafka acls: out of memory");
    list->items[list->count++] = *acl;
    return BZ_OK;
}

static void trim(char *s)
{
    size_t start = strspn(s, " \t"), len = strlen(s);
    while (len > start && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    memmove(s, s + start, len - start);
    s[len - start] = '\0';
}

/* Replace the template's <id> in item with gateway_id (NULL: none allowed). */
static bz_status substitute_id(char *item, const char *gateway_id, bz_error *err)
{
    char *at = strstr(item, TEMPLATE_ID);
    if (!at)
        return BZ_OK;
    if (!gateway_id)
        return bz_fail(err, BZ_ERR_INTERNAL, "acl matrix: '%s' names <id> outside the gateway row",
                       item);
    const char *rest = at + strlen(TEMPLATE_ID);
    size_t head = (size_t)(at - item), id_len = strlen(gateway_id), rest_len = strlen(rest);
    if (head + id_len + rest_len >= ITEM_MAX)
        return bz_fail(err, BZ_ERR_INTERNAL, "acl matrix: item too long for gateway %s", gateway_id);
    memmove(item + head + id_len, rest, rest_len + 1);
    memcpy(item + head, gateway_id, id_len);
    return BZ_OK;
}

/* One item of a topic, group or transactional-id cell: "name", "name*",
 * "*", each optionally followed by "(describe)". */
static bz_status parse_name_item(const char *text, const char *prefix, const char *gateway_id,
                                 bz_kafka_acl *acl, bz_error *err)
{
    char item[ITEM_MAX];
    if (strlen(text) >= sizeof item)
        return bz_fail(err, BZ_ERR_INTERNAL, "acl matrix: item too long: %.40s...", text);
    snprintf(item, sizeof item, "%s", text);
    trim(item);
    size_t len = strlen(item);
    static const char describe[] = "(describe)";
    if (len > sizeof describe - 1 && strcmp(item + len - (sizeof describe - 1), describe) == 0) {
        acl->op = BZ_ACL_DESCRIBE;
        item[len - (sizeof describe - 1)] = '\0';
        trim(item);
    }
    bz_status st = substitute_id(item, gateway_id, err);
    if (st != BZ_OK)
        return st;
    len = strlen(item);
    if (len == 0)
        return bz_fail(err, BZ_ERR_INTERNAL, "acl matrix: empty item in '%s'", text);
    const char *p = prefix ? prefix : "";
    if (strcmp(item, "*") == 0) {
        acl->prefixed = *p != '\0';
        snprintf(acl->name, sizeof acl->name, "%s", *p ? p : "*");
        return BZ_OK;
    }
    acl->prefixed = item[len - 1] == '*';
    if (acl->prefixed)
        item[len - 1] = '\0';
    st = bz_topic_name_checked(p, item, acl->name, sizeof acl->name, err);
    return st == BZ_OK ? BZ_OK : bz_wrap(err, "acl matrix item '%s'", text);
}

static bz_status parse_cluster_op(const char *text, bz_kafka_acl_op *op, bz_error *err)
{
    static const bz_kafka_acl_op ops[] = {BZ_ACL_CREATE, BZ_ACL_DESCRIBE, BZ_ACL_ALTER};
    char item[64];
    snprintf(item, sizeof item, "%s", text);
    trim(item);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcasecmp(item, bz_kafka_acl_op_name(ops[i])) == 0) {
            *op = ops[i];
            return BZ_OK;
        }
    return bz_fail(err, BZ_ERR_INTERNAL, "acl matrix: unknown cluster operation '%s'", item);
}

typedef struct cell_context {
    const char *principal;
    const char *prefix;
    const char *gateway_id;
    bz_kafka_acl_list *out;
} cell_context;

/* Add one binding per item of cell. */
static bz_status add_cell(const cell_context *cx, const char *cell, bz_kafka_acl_resource resource,
                          bz_kafka_acl_op default_op, bz_error *err)
{
    char *copy = strdup(cell);
    if (!copy)
        return bz_fail(err, BZ_ERR_NOMEM, "kafka acls: out of memory");
    bz_status st = BZ_OK;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); st == BZ_OK && item;
         item = strtok_r(NULL, ",", &save)) {
        bz_kafka_acl acl;
        memset(&acl, 0, sizeof acl);
        snprintf(acl.principal, sizeof acl.principal, "%s", cx->principal);
        acl.resource = resource;
        acl.op = default_op;
        if (resource == BZ_ACL_CLUSTER) {
            snprintf(acl.name, sizeof acl.name, "%s", CLUSTER_NAME);
            st = parse_cluster_op(item, &acl.op, err);
        } else {
            /* Only topic names carry the deployment prefix. */
            st = parse_name_item(item, resource == BZ_ACL_TOPIC ? cx->prefix : NULL,
                                 cx->gateway_id, &acl, err);
        }
        if (st == BZ_OK)
            st = push(cx->out, &acl, err);
    }
    free(copy);
    return st;
}

static bz_status add_row(const matrix_row *row, const cell_context *cx, bz_error *err)
{
    bz_status st = add_cell(cx, row->writes, BZ_ACL_TOPIC, BZ_ACL_WRITE, err);
    if (st == BZ_OK)
        st = add_cell(cx, row->reads, BZ_ACL_TOPIC, BZ_ACL_READ, err);
    if (st == BZ_OK)
        st = add_cell(cx, row->groups, BZ_ACL_GROUP, BZ_ACL_READ, err);
    if (st == BZ_OK)
        st = add_cell(cx, row->transactional_ids, BZ_ACL_TRANSACTIONAL_ID, BZ_ACL_WRITE, err);
    if (st == BZ_OK)
        st = add_cell(cx, row->cluster, BZ_ACL_CLUSTER, BZ_ACL_CREATE, err);
    return st == BZ_OK ? BZ_OK : bz_wrap(err, "acls of %s", cx->principal);
}

bz_status bz_kafka_acls_for_services(const char *prefix, bz_kafka_acl_list *out, bz_error *err)
{
    for (size_t i = 0; i < MATRIX_ROWS; i++) {
        if (is_template(&matrix[i]))
            continue;
        cell_context cx = {.principal = matrix[i].principal, .prefix = prefix, .out = out};
        bz_status st = add_row(&matrix[i], &cx, err);
        if (st != BZ_OK)
            return st;
    }
    return BZ_OK;
}

bz_status bz_kafka_acls_for_gateway(const char *prefix, const char *gateway_id,
                                    const char *principal, bz_kafka_acl_list *out,
                                    bz_error *err)
{
    char topic[BZ_TOPIC_NAME_MAX];
    bz_status st = bz_topic_gateway_name(prefix, BZ_GATEWAY_TOPIC_INBOUND, gateway_id, topic,
                                         sizeof topic, err);
    if (st != BZ_OK)
        return st;
    char fallback[BZ_KAFKA_PRINCIPAL_MAX];
    snprintf(fallback, sizeof fallback, "gateway-%s", gateway_id);
    if (principal && (!*principal || strlen(principal) >= BZ_KAFKA_PRINCIPAL_MAX))
        return bz_fail(err, BZ_ERR_CONFIG, "gateway %s: principal must be 1 to %d characters",
                       gateway_id, BZ_KAFKA_PRINCIPAL_MAX - 1);
    for (size_t i = 0; i < MATRIX_ROWS; i++) {
        if (!is_template(&matrix[i]))
            continue;
        cell_context cx = {.principal = principal ? principal : fallback, .prefix = prefix,
                           .gateway_id = gateway_id, .out = out};
        return add_row(&matrix[i], &cx, err);
    }
    return bz_fail(err, BZ_ERR_INTERNAL, "acl matrix: no gateway-<id> row");
}

void bz_kafka_acl_list_free(bz_kafka_acl_list *list)
{
    if (!list)
        return;
    free(list->items);
    memset(list, 0, sizeof *list);
}

size_t bz_kafka_acl_principal_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < MATRIX_ROWS; i++)
        n += !is_template(&matrix[i]);
    return n;
}

const char *bz_kafka_acl_principal(size_t i)
{
    for (size_t r = 0; r < MATRIX_ROWS; r++) {
        if (is_template(&matrix[r]))
            continue;
        if (i-- == 0)
            return matrix[r].principal;
    }
    return NULL;
}

const char *bz_kafka_acl_op_name(bz_kafka_acl_op op)
{
    switch (op) {
    case BZ_ACL_READ: return "Read";
    case BZ_ACL_WRITE: return "Write";
    case BZ_ACL_DESCRIBE: return "Describe";
    case BZ_ACL_CREATE: return "Create";
    case BZ_ACL_ALTER: return "Alter";
    }
    return "?";
}

const char *bz_kafka_acl_resource_name(bz_kafka_acl_resource r)
{
    switch (r) {
    case BZ_ACL_TOPIC: return "Topic";
    case BZ_ACL_GROUP: return "Group";
    case BZ_ACL_TRANSACTIONAL_ID: return "TransactionalId";
    case BZ_ACL_CLUSTER: return "Cluster";
    }
    return "?";
}

/* ---- creating them ------------------------------------------------------- */

static rd_kafka_AclOperation_t rd_operation(bz_kafka_acl_op op)
{
    switch (op) {
    case BZ_ACL_READ: return RD_KAFKA_ACL_OPERATION_READ;
    case BZ_ACL_WRITE: return RD_KAFKA_ACL_OPERATION_WRITE;
    case BZ_ACL_DESCRIBE: return RD_KAFKA_ACL_OPERATION_DESCRIBE;
    case BZ_ACL_CREATE: return RD_KAFKA_ACL_OPERATION_CREATE;
    case BZ_ACL_ALTER: return RD_KAFKA_ACL_OPERATION_ALTER;
    }
    return RD_KAFKA_ACL_OPERATION_UNKNOWN;
}

/* Kafka's CLUSTER resource is librdkafka's RESOURCE_BROKER (both 4). */
static rd_kafka_ResourceType_t rd_resource(bz_kafka_acl_resource r)
{
    return r == BZ_ACL_TOPIC ? RD_KAFKA_RESOURCE_TOPIC
         : r == BZ_ACL_GROUP ? RD_KAFKA_RESOURCE_GROUP
                             : RD_KAFKA_RESOURCE_BROKER;
}

static bz_status new_bindings(const bz_kafka_acl_list *list, rd_kafka_AclBinding_t **out,
                              size_t *n, size_t *skipped, bz_error *err)
{
    *n = 0;
    *skipped = 0;
    for (size_t i = 0; i < list->count; i++) {
        const bz_kafka_acl *a = &list->items[i];
        if (a->resource == BZ_ACL_TRANSACTIONAL_ID) {
            (*skipped)++;
            continue;
        }
        char principal[BZ_KAFKA_PRINCIPAL_MAX + 8], errstr[256];
        snprintf(principal, sizeof principal, "User:%s", a->principal);
        out[*n] = rd_kafka_AclBinding_new(
            rd_resource(a->resource), a->name,
            a->prefixed ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED : RD_KAFKA_RESOURCE_PATTERN_LITERAL,
            principal, "*", rd_operation(a->op), RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, errstr,
            sizeof errstr);
        if (!out[*n])
            return bz_fail(err, BZ_ERR_INTERNAL, "acl %s %s %s for %s: %s",
                           bz_kafka_acl_op_name(a->op), bz_kafka_acl_resource_name(a->resource),
                           a->name, a->principal, errstr);
        (*n)++;
    }
    return BZ_OK;
}

static bz_status read_results(rd_kafka_event_t *ev, bz_error *err)
{
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return bz_fail(err, BZ_ERR_TRANSIENT, "create acls: %s", rd_kafka_event_error_string(ev));
    const rd_kafka_CreateAcls_result_t *res = rd_kafka_event_CreateAcls_result(ev);
    if (!res)
        return bz_fail(err, BZ_ERR_INTERNAL, "create acls: unexpected event %s",
                       rd_kafka_event_name(ev));
    size_t cnt = 0;
    const rd_kafka_acl_result_t **results = rd_kafka_CreateAcls_result_acls(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        const rd_kafka_error_t *e = rd_kafka_acl_result_error(results[i]);
        if (e)
            return bz_fail(err, BZ_ERR_CONFIG, "create acl %zu: %s", i, rd_kafka_error_string(e));
    }
    return BZ_OK;
}

/* How many bindings the broker's authorizer holds that match filter; -1
 * when it could not say within timeout_ms. */
static long count_applied(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_AclBindingFilter_t *filter,
                          int timeout_ms)
{
    char errstr[256];
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBEACLS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof errstr);
    rd_kafka_DescribeAcls(rk, filter, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    const rd_kafka_DescribeAcls_result_t *res = ev ? rd_kafka_event_DescribeAcls_result(ev) : NULL;
    long found = -1;
    if (res && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t cnt = 0;
        rd_kafka_DescribeAcls_result_acls(res, &cnt);
        found = (long)cnt;
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    return found;
}

/* CreateAcls answers once the controller has committed the bindings; a
 * broker applies them to its authorizer a moment later, and a client
 * started at once may be refused in between (seen under the test suite's
 * load: a gateway's first 40 records refused). Wait until the broker that
 * answers holds `last`: the batch's last binding naming a topic (its name
 * carries the deployment's prefix, so it is new with the prefix; bindings
 * of one batch are applied in order). */
static bz_status wait_until_applied(rd_kafka_t *rk, rd_kafka_queue_t *q,
                                    const rd_kafka_AclBinding_t *last, int timeout_ms,
                                    bz_error *err)
{
    char errstr[256];
    rd_kafka_AclBindingFilter_t *filter = rd_kafka_AclBindingFilter_new(
        rd_kafka_AclBinding_restype(last), rd_kafka_AclBinding_name(last),
        rd_kafka_AclBinding_resource_pattern_type(last), rd_kafka_AclBinding_principal(last),
        rd_kafka_AclBinding_host(last), rd_kafka_AclBinding_operation(last),
        rd_kafka_AclBinding_permission_type(last), errstr, sizeof errstr);
    if (!filter)
        return bz_fail(err, BZ_ERR_INTERNAL, "acl filter for %s: %s",
                       rd_kafka_AclBinding_name(last), errstr);
    int64_t deadline = bz_monotonic_ms() + timeout_ms;
    long found;
    while ((found = count_applied(rk, q, filter, timeout_ms)) < 1 && bz_monotonic_ms() < deadline)
        bz_sleep_ms(50);
    rd_kafka_AclBinding_destroy(filter);
    if (found < 1)
        return bz_fail(err, BZ_ERR_TRANSIENT,
                       "create acls: the broker did not apply them within %d ms (%s on %s)",
                       timeout_ms, rd_kafka_AclBinding_principal(last),
                       rd_kafka_AclBinding_name(last));
    return BZ_OK;
}

bz_status bz_kafka_acls_create(const char *brokers, const bz_kafka_acl_list *list,
                               int timeout_ms, size_t *skipped, bz_error *err)
{
    size_t n = 0, none = 0;
    if (!skipped)
        skipped = &none;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, sized as such */
    rd_kafka_AclBinding_t **bindings = calloc(list->count ? list->count : 1, sizeof *bindings);
    if (!bindings)
        return bz_fail(err, BZ_ERR_NOMEM, "create acls: out of memory");
    bz_status st = new_bindings(list, bindings, &n, skipped, err);
    bz_kafka_settings settings = {.brokers = brokers, .client_id = "blazz-acls"};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    char errstr[256];
    if (st == BZ_OK && n > 0)
        st = bz_kafka_conf_new(&settings, NULL, &conf, err);
    if (st == BZ_OK && conf && !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr))) {
        rd_kafka_conf_destroy(conf);
        st = bz_fail(err, BZ_ERR_CONFIG, "create acls: client for %s: %s", brokers, errstr);
    }
    if (st == BZ_OK && rk) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATEACLS);
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof errstr);
        rd_kafka_CreateAcls(rk, bindings, n, opts, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
        st = ev ? read_results(ev, err)
                : bz_fail(err, BZ_ERR_TRANSIENT, "create acls on %s: no answer within %d ms",
                          brokers, timeout_ms + 2000);
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_AdminOptions_destroy(opts);
        size_t last = n - 1;
        while (last > 0 && rd_kafka_AclBinding_restype(bindings[last]) != RD_KAFKA_RESOURCE_TOPIC)
            last--;
        if (st == BZ_OK)
            st = wait_until_applied(rk, q, bindings[last], timeout_ms, err);
        rd_kafka_queue_destroy(q);
    }
    if (rk)
        rd_kafka_destroy(rk);
    rd_kafka_AclBinding_destroy_array(bindings, n);
    free(bindings);
    return st;
}
