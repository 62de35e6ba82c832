/*
 * plaintext_refused.h - the TLS-only stack's refusals (issue 32): in the
 * stack of state folder dir (its stack.env), PostgreSQL refuses a
 * connection with sslmode=disable ("no encryption"), and a Kafka client
 * of the stack's principal speaking SASL_PLAINTEXT gets no metadata.
 * Fails the running cmocka test otherwise; prints each refusal.
 */
#ifndef PLAINTEXT_REFUSED_H
#define PLAINTEXT_REFUSED_H

void itest_plaintext_refused(const char *dir);

#endif
