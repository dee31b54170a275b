/*
 * store_cloudkit.h - what the cloudkit: store makes of one entry of a reply,
 * without the network: for fuzz/cloudkit.c, which feeds it hostile replies.
 * The store itself is reached through store.h only.
 */
#ifndef RD_STORE_CLOUDKIT_H
#define RD_STORE_CLOUDKIT_H

#include "store.h"

/*
 * One record dict of a records/query, records/changes or records/lookup
 * reply as a record line (replacing out's contents), for a store of zone
 * zone; -1 with a message.
 */
int cloudkit_record_line(const char *zone, const struct json *r, struct sb *out);

/* Set c's outcome from its entry e (NULL: none) of a records/modify reply. */
void cloudkit_outcome(struct change *c, const struct json *e);

#endif
