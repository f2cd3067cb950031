/* cluster_slot.h - Redis Cluster key routing, without a Redis client.
 *
 * What a cluster client needs besides its connections: the slot of a key
 * (CRC16-XMODEM of the key, or of its hash tag, mod 16384, exactly as
 * Redis's keyHashSlot), the seed-node list of the configuration
 * ("host:port host:port ..."), a slot map (slot -> master) filled from
 * CLUSTER SLOTS by the caller's own reply parser (sync or async hiredis),
 * and the parsing of -MOVED / -ASK redirections. Pure functions and one
 * plain struct, so the trainer and the daemon share them.
 */
#ifndef RECD_CLUSTER_SLOT_H
#define RECD_CLUSTER_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_N_SLOTS 16384
#define CLUSTER_HOST_MAX 255 /* longest host name or address, in bytes */

/* CRC16-XMODEM (polynomial 0x1021, initial 0), Redis's crc16(). */
uint16_t cluster_crc16(const void *buf, size_t len);

/* The slot of a key: the CRC16 of the first {...} with non-empty content
 * when the key has one, else of the whole key; mod 16384. */
uint16_t cluster_key_slot(const char *key, size_t len);

typedef struct cluster_node {
  char host[CLUSTER_HOST_MAX + 1];
  int port;
} cluster_node_t;

/* Parses a seed list: "host:port" entries separated by spaces, tabs or
 * commas; an IPv6 address in brackets ("[::1]:7000"). Ports 1-65535, at
 * least one entry. On success *nodes (malloc'ed, free() it) holds *n
 * entries; else RECD_EINVAL (or RECD_ENOMEM) with errbuf naming the
 * offending entry. */
int cluster_parse_nodes(const char *list, cluster_node_t **nodes, size_t *n, char *errbuf);

/* Slot -> master. Nodes are kept in order of first mention and never
 * removed by an update, so a caller may index its connections by them. */
typedef struct cluster_map {
  uint16_t slot_node[CLUSTER_N_SLOTS]; /* 1 + node index; 0: slot not served */
  cluster_node_t *nodes;
  size_t n_nodes, cap;
} cluster_map_t;

void cluster_map_init(cluster_map_t *m);
void cluster_map_free(cluster_map_t *m);
/* Forgets every slot assignment (nodes stay, so indexes stay valid). */
void cluster_map_clear_slots(cluster_map_t *m);
/* The index of node host:port (hlen bytes of host), added when new.
 * >= 0, or RECD_EINVAL (empty or over-long host, bad port), RECD_ENOMEM. */
int cluster_map_node(cluster_map_t *m, const char *host, size_t hlen, int port);
/* Slots lo..hi (inclusive) served by node index `node`. 0 or RECD_ERANGE. */
int cluster_map_assign(cluster_map_t *m, uint32_t lo, uint32_t hi, int node);
/* The node index serving slot, or -1 when none does. */
int cluster_map_lookup(const cluster_map_t *m, uint16_t slot);
/* Slots served by no node; *first (may be NULL) receives the first one. */
uint32_t cluster_map_unserved(const cluster_map_t *m, uint32_t *first);
/* Whether node index `node` serves at least one slot (a master of the map). */
int cluster_map_serves(const cluster_map_t *m, int node);

/* Redirections: an error reply "MOVED <slot> <host>:<port>" or "ASK <slot>
 * <host>:<port>" (the text after '-'). Returns CLUSTER_REDIR_MOVED or
 * CLUSTER_REDIR_ASK with *slot and *to filled (to->host is "" when the
 * reply leaves the host out: the node that replied), or
 * CLUSTER_REDIR_NONE for any other error text. */
enum { CLUSTER_REDIR_NONE = 0, CLUSTER_REDIR_MOVED = 1, CLUSTER_REDIR_ASK = 2 };
int cluster_parse_redirect(const char *err, size_t len, uint16_t *slot, cluster_node_t *to);

#endif
