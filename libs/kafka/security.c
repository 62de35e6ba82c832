/*
 * security.c - Kafka client authentication settings (see security.h).
 *
 * The keys are an ordinary configuration schema, so services get them with
 * their other keys and tools load the same schema from the environment
 * alone (bz_config_load with no file), which also brings the _FILE form of
 * the password. The process identity is one static copy guarded by a mutex:
 * services install theirs at start-up, any other program gets the
 * environment's on first use.
 */
#include "kafka/security.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/weak_secret.h"

const bz_config_key bz_kafka_security_keys[BZ_KAFKA_SECURITY_NKEYS] = {
    {.name = "kafka.security_protocol", .type = BZ_CFG_STRING, .def = "sasl_plaintext",
     .help = "sasl_plaintext, sasl_ssl (TLS), ssl, or plaintext (an unauthenticated broker "
             "only)"},
    {.name = "kafka.sasl_mechanism", .type = BZ_CFG_STRING, .def = "SCRAM-SHA-512",
     .help = "SASL mechanism: SCRAM-SHA-512 or SCRAM-SHA-256"},
    {.name = "kafka.sasl_username", .type = BZ_CFG_STRING,
     .help = "Kafka principal (SCRAM user); services default to their own name"},
    {.name = "kafka.sasl_password", .type = BZ_CFG_STRING, .secret = 1,
     .help = "password of kafka.sasl_username"},
    {.name = "kafka.ssl_ca_location", .type = BZ_CFG_STRING,
     .help = "CA certificate (PEM) to verify the broker with under sasl_ssl or ssl; unset: "
             "the system's"},
};

static int is_sasl(const char *protocol)
{
    return strncmp(protocol, "sasl_", 5) == 0;
}

static bz_status check_protocol(const char *protocol, bz_error *err)
{
    static const char *const known[] = {"plaintext", "sasl_plaintext", "sasl_ssl", "ssl"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(protocol, known[i]) == 0)
            return BZ_OK;
    return bz_fail(err, BZ_ERR_CONFIG,
                   "kafka.security_protocol '%s': expected sasl_plaintext, sasl_ssl, ssl or "
                   "plaintext",
                   protocol);
}

static bz_status check_mechanism(const char *mechanism, bz_error *err)
{
    if (strcasecmp(mechanism, "SCRAM-SHA-512") == 0 || strcasecmp(mechanism, "SCRAM-SHA-256") == 0)
        return BZ_OK;
    return bz_fail(err, BZ_ERR_CONFIG,
                   "kafka.sasl_mechanism '%s': expected SCRAM-SHA-512 or SCRAM-SHA-256", mechanism);
}

static char *copy_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static int lost_copy(const char *given, const char *copy)
{
    return given && *given && !copy;
}

/* Fill out from the five values; NULL or "" means unset. */
static bz_status build(const char *protocol, const char *mechanism, const char *username,
                       const char *password, const char *ca, bz_kafka_security *out,
                       bz_error *err)
{
    memset(out, 0, sizeof *out);
    const char *proto = protocol && *protocol ? protocol : "sasl_plaintext";
    if (strlen(proto) >= sizeof out->protocol)
        return check_protocol(proto, err);
    for (size_t i = 0; proto[i]; i++)
        out->protocol[i] = (char)(proto[i] >= 'A' && proto[i] <= 'Z' ? proto[i] + 32 : proto[i]);
    bz_status st = check_protocol(out->protocol, err);
    if (st != BZ_OK)
        return st;
    if (is_sasl(out->protocol)) {
        const char *mech = mechanism && *mechanism ? mechanism : "SCRAM-SHA-512";
        if ((st = check_mechanism(mech, err)) != BZ_OK)
            return st;
        for (size_t i = 0; mech[i]; i++)
            out->mechanism[i] = (char)(mech[i] >= 'a' && mech[i] <= 'z' ? mech[i] - 32 : mech[i]);
        if (!username || !*username)
            return bz_fail(err, BZ_ERR_CONFIG,
                           "kafka.sasl_username: required with kafka.security_protocol %s (set "
                           "BLAZZ_KAFKA_SASL_USERNAME)",
                           out->protocol);
        if (!password || !*password)
            return bz_fail(err, BZ_ERR_CONFIG,
                           "kafka.sasl_password: required with kafka.security_protocol %s (set "
                           "BLAZZ_KAFKA_SASL_PASSWORD or BLAZZ_KAFKA_SASL_PASSWORD_FILE)",
                           out->protocol);
        st = bz_secret_refuse_short("kafka.sasl_password", password, BZ_PASSWORD_LEN_MIN, err);
        if (st != BZ_OK)
            return st;
        out->username = strdup(username);
        out->password = strdup(password);
    }
    out->ca_location = copy_or_null(ca);
    if ((is_sasl(out->protocol) && (!out->username || !out->password)) ||
        lost_copy(ca, out->ca_location)) {
        bz_kafka_security_release(out);
        return bz_fail(err, BZ_ERR_NOMEM, "kafka security settings: out of memory");
    }
    return BZ_OK;
}

bz_status bz_kafka_security_from_config(const bz_config *cfg, const char *default_username,
                                        bz_kafka_security *out, bz_error *err)
{
    const char *username = bz_config_string(cfg, "kafka.sasl_username");
    if (!username || !*username)
        username = default_username;
    return build(bz_config_string(cfg, "kafka.security_protocol"),
                 bz_config_string(cfg, "kafka.sasl_mechanism"), username,
                 bz_config_string(cfg, "kafka.sasl_password"),
                 bz_config_string(cfg, "kafka.ssl_ca_location"), out, err);
}

bz_status bz_kafka_security_from_env(bz_kafka_security *out, bz_error *err)
{
    memset(out, 0, sizeof *out);
    bz_config *cfg = NULL;
    bz_status st = bz_config_load(bz_kafka_security_keys, BZ_KAFKA_SECURITY_NKEYS, NULL, &cfg, err);
    if (st == BZ_OK)
        st = bz_kafka_security_from_config(cfg, NULL, out, err);
    bz_config_free(cfg);
    return st;
}

/* Deep copy of src into out (release it like any other). */
static bz_status copy_security(const bz_kafka_security *src, bz_kafka_security *out,
                               bz_error *err)
{
    return build(src->protocol, src->mechanism, src->username, src->password, src->ca_location,
                 out, err);
}

void bz_kafka_security_release(bz_kafka_security *s)
{
    if (!s)
        return;
    if (s->password)
        OPENSSL_cleanse(s->password, strlen(s->password));
    free(s->password);
    free(s->username);
    free(s->ca_location);
    memset(s, 0, sizeof *s);
}

static bz_status set(rd_kafka_conf_t *conf, const char *name, const char *value, bz_error *err)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return bz_fail(err, BZ_ERR_CONFIG, "kafka property %s: %s", name, errstr);
    return BZ_OK;
}

bz_status bz_kafka_security_apply(const bz_kafka_security *s, rd_kafka_conf_t *conf,
                                  bz_error *err)
{
    bz_status st = set(conf, "security.protocol", s->protocol, err);
    if (st == BZ_OK && is_sasl(s->protocol)) {
        st = set(conf, "sasl.mechanisms", s->mechanism, err);
        if (st == BZ_OK)
            st = set(conf, "sasl.username", s->username, err);
        if (st == BZ_OK)
            st = set(conf, "sasl.password", s->password, err);
    }
    if (st == BZ_OK && s->ca_location)
        st = set(conf, "ssl.ca.location", s->ca_location, err);
    return st;
}

/* ---- the process identity ------------------------------------------------ */

static pthread_mutex_t identity_mu = PTHREAD_MUTEX_INITIALIZER;
static bz_kafka_security identity;
static int identity_state; /* 0: not yet, 1: set, -1: the environment's failed */
static bz_error identity_error;

bz_status bz_kafka_identity_install(const bz_kafka_security *s, bz_error *err)
{
    bz_kafka_security copy;
    bz_status st = copy_security(s, &copy, err);
    if (st != BZ_OK)
        return st;
    pthread_mutex_lock(&identity_mu);
    bz_kafka_security_release(&identity);
    identity = copy;
    identity_state = 1;
    pthread_mutex_unlock(&identity_mu);
    return BZ_OK;
}

bz_status bz_kafka_identity(const bz_kafka_security **out, bz_error *err)
{
    pthread_mutex_lock(&identity_mu);
    if (identity_state == 0) {
        bz_error_clear(&identity_error);
        identity_state = bz_kafka_security_from_env(&identity, &identity_error) == BZ_OK ? 1 : -1;
    }
    int state = identity_state;
    if (state < 0 && err)
        *err = identity_error;
    pthread_mutex_unlock(&identity_mu);
    if (state < 0)
        return err ? err->code : BZ_ERR_CONFIG;
    *out = &identity;
    return BZ_OK;
}
