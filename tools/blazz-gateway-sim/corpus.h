/*
 * corpus.h - the words the simulator makes its traffic from: Indonesian
 * and English first and last names, business and group names, message
 * bodies a CRM inbox really sees, captions, file names, disconnect details.
 *
 * Each list is a static array; bz_sim_pick returns a uniformly chosen entry.
 */
#ifndef BZ_SIM_CORPUS_H
#define BZ_SIM_CORPUS_H

#include <stddef.h>

#include "sim.h"

typedef struct bz_sim_words {
    const char *const *items;
    size_t count;
} bz_sim_words;

extern const bz_sim_words bz_sim_first_names;
extern const bz_sim_words bz_sim_last_names;
extern const bz_sim_words bz_sim_businesses;
extern const bz_sim_words bz_sim_group_names;
extern const bz_sim_words bz_sim_inbound_bodies;  /* what customers write */
extern const bz_sim_words bz_sim_outbound_bodies; /* what agents answer */
extern const bz_sim_words bz_sim_group_bodies;
extern const bz_sim_words bz_sim_captions;
extern const bz_sim_words bz_sim_documents;       /* file names */
extern const bz_sim_words bz_sim_places;          /* "name|address|lat|lon" */
extern const bz_sim_words bz_sim_emojis;
extern const bz_sim_words bz_sim_disconnect_details;

/* A uniformly chosen entry of w (static storage). */
const char *bz_sim_pick(bz_sim_rng *r, const bz_sim_words *w);

#endif
