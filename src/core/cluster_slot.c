/* cluster_slot.c - see recd/cluster_slot.h. */
#include "recd/cluster_slot.h"

#include <stdlib.h>
#include <string.h>

#include "recd/err.h"

/* CRC16-XMODEM, one byte at a time (the table Redis's crc16.c holds). */
static const uint16_t cluster__crc16tab[256] = {
  0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
  0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
  0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
  0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
  0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
  0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
  0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
  0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
  0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
  0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
  0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
  0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
  0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
  0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
  0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
  0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
  0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
  0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
  0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
  0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
  0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
  0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
  0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
  0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
  0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
  0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
  0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
  0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
  0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
  0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
  0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
  0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

uint16_t cluster_crc16(const void *buf, size_t len) {
  const unsigned char *p = buf;
  uint16_t crc = 0;
  for (size_t i = 0; i < len; i++)
    crc = (uint16_t)((crc << 8) ^ cluster__crc16tab[((crc >> 8) ^ p[i]) & 0xff]);
  return crc;
}

uint16_t cluster_key_slot(const char *key, size_t len) {
  size_t s, e;
  for (s = 0; s < len && key[s] != '{'; s++)
    ;
  if (s < len) {
    for (e = s + 1; e < len && key[e] != '}'; e++)
      ;
    /* A closed tag with something inside: only that part is hashed. */
    if (e < len && e > s + 1)
      return cluster_crc16(key + s + 1, e - s - 1) & (CLUSTER_N_SLOTS - 1);
  }
  return cluster_crc16(key, len) & (CLUSTER_N_SLOTS - 1);
}

/* A port of 1 to 65535 in p[0..len), digits only. -1 if not. */
static int cluster__port(const char *p, size_t len) {
  if (len == 0 || len > 5)
    return -1;
  int v = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v >= 1 && v <= 65535 ? v : -1;
}

/* Splits one "host:port" / "[v6]:port" entry. 0 or -1. */
static int cluster__split(const char *p, size_t len, cluster_node_t *out) {
  const char *host = p, *colon;
  size_t hlen;
  if (len > 0 && p[0] == '[') {
    const char *close = memchr(p, ']', len);
    if (close == NULL || close + 1 >= p + len || close[1] != ':')
      return -1;
    host = p + 1;
    hlen = (size_t)(close - host);
    colon = close + 1;
  } else {
    colon = NULL;
    for (size_t i = len; i-- > 0;)
      if (p[i] == ':') {
        colon = p + i;
        break;
      }
    if (colon == NULL)
      return -1;
    hlen = (size_t)(colon - p);
    /* An IPv6 address needs its brackets: "::1:7000" is ambiguous. */
    if (memchr(p, ':', hlen) != NULL)
      return -1;
  }
  const int port = cluster__port(colon + 1, (size_t)(p + len - colon - 1));
  if (hlen == 0 || hlen > CLUSTER_HOST_MAX || port < 0)
    return -1;
  memcpy(out->host, host, hlen);
  out->host[hlen] = '\0';
  out->port = port;
  return 0;
}

static int cluster__sep(char c) {
  return c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r';
}

int cluster_parse_nodes(const char *list, cluster_node_t **nodes, size_t *n, char *errbuf) {
  *nodes = NULL;
  *n = 0;
  size_t cap = 0;
  const char *p = list;
  for (;;) {
    while (*p && cluster__sep(*p))
      p++;
    if (*p == '\0')
      break;
    const char *e = p;
    while (*e && !cluster__sep(*e))
      e++;
    if (*n == cap) {
      size_t nc = cap ? 2 * cap : 4;
      cluster_node_t *g = realloc(*nodes, nc * sizeof *g);
      if (g == NULL) {
        free(*nodes);
        *nodes = NULL;
        *n = 0;
        return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
      }
      *nodes = g;
      cap = nc;
    }
    if (cluster__split(p, (size_t)(e - p), &(*nodes)[*n]) != 0) {
      const int shown = e - p > 80 ? 80 : (int)(e - p);
      recd_errf(errbuf, RECD_EINVAL, "\"%.*s\" is not host:port with a port of 1 to 65535 "
                "(an IPv6 address in brackets: [::1]:7000)", shown, p);
      free(*nodes);
      *nodes = NULL;
      *n = 0;
      return RECD_EINVAL;
    }
    ++*n;
    p = e;
  }
  if (*n == 0)
    return recd_errf(errbuf, RECD_EINVAL, "no node given (expected \"host:port host:port ...\")");
  return 0;
}

void cluster_map_init(cluster_map_t *m) {
  memset(m, 0, sizeof *m);
}

void cluster_map_free(cluster_map_t *m) {
  free(m->nodes);
  memset(m, 0, sizeof *m);
}

void cluster_map_clear_slots(cluster_map_t *m) {
  memset(m->slot_node, 0, sizeof m->slot_node);
}

int cluster_map_node(cluster_map_t *m, const char *host, size_t hlen, int port) {
  if (hlen == 0 || hlen > CLUSTER_HOST_MAX || port < 1 || port > 65535 ||
      memchr(host, '\0', hlen) != NULL)
    return RECD_EINVAL;
  for (size_t i = 0; i < m->n_nodes; i++)
    if (m->nodes[i].port == port && strlen(m->nodes[i].host) == hlen &&
        memcmp(m->nodes[i].host, host, hlen) == 0)
      return (int)i;
  if (m->n_nodes >= UINT16_MAX - 1)
    return RECD_ERANGE;
  if (m->n_nodes == m->cap) {
    size_t nc = m->cap ? 2 * m->cap : 8;
    cluster_node_t *g = realloc(m->nodes, nc * sizeof *g);
    if (g == NULL)
      return RECD_ENOMEM;
    m->nodes = g;
    m->cap = nc;
  }
  cluster_node_t *nd = &m->nodes[m->n_nodes];
  memcpy(nd->host, host, hlen);
  nd->host[hlen] = '\0';
  nd->port = port;
  return (int)m->n_nodes++;
}

int cluster_map_assign(cluster_map_t *m, uint32_t lo, uint32_t hi, int node) {
  if (lo > hi || hi >= CLUSTER_N_SLOTS || node < 0 || (size_t)node >= m->n_nodes)
    return RECD_ERANGE;
  for (uint32_t s = lo; s <= hi; s++)
    m->slot_node[s] = (uint16_t)(node + 1);
  return 0;
}

int cluster_map_lookup(const cluster_map_t *m, uint16_t slot) {
  return slot < CLUSTER_N_SLOTS ? (int)m->slot_node[slot] - 1 : -1;
}

uint32_t cluster_map_unserved(const cluster_map_t *m, uint32_t *first) {
  uint32_t n = 0;
  for (uint32_t s = 0; s < CLUSTER_N_SLOTS; s++)
    if (m->slot_node[s] == 0 && n++ == 0 && first != NULL)
      *first = s;
  return n;
}

int cluster_map_serves(const cluster_map_t *m, int node) {
  for (uint32_t s = 0; s < CLUSTER_N_SLOTS; s++)
    if (m->slot_node[s] == (uint16_t)(node + 1))
      return 1;
  return 0;
}

int cluster_parse_redirect(const char *err, size_t len, uint16_t *slot, cluster_node_t *to) {
  int kind;
  size_t i;
  if (len > 6 && memcmp(err, "MOVED ", 6) == 0) {
    kind = CLUSTER_REDIR_MOVED;
    i = 6;
  } else if (len > 4 && memcmp(err, "ASK ", 4) == 0) {
    kind = CLUSTER_REDIR_ASK;
    i = 4;
  } else {
    return CLUSTER_REDIR_NONE;
  }
  uint32_t s = 0;
  const size_t d0 = i;
  while (i < len && err[i] >= '0' && err[i] <= '9' && i - d0 < 6)
    s = s * 10 + (uint32_t)(err[i++] - '0');
  if (i == d0 || s >= CLUSTER_N_SLOTS || i >= len || err[i] != ' ')
    return CLUSTER_REDIR_NONE;
  i++;
  /* The endpoint: host:port, [v6]:port, an IPv6 address without brackets
   * (Redis writes them so here) or ":port" for the replying node's host. */
  const char *ep = err + i;
  size_t elen = len - i;
  while (elen > 0 && (ep[elen - 1] == '\r' || ep[elen - 1] == '\n' || ep[elen - 1] == ' '))
    elen--;
  const char *colon = NULL;
  for (size_t j = elen; j-- > 0;)
    if (ep[j] == ':') {
      colon = ep + j;
      break;
    }
  if (colon == NULL)
    return CLUSTER_REDIR_NONE;
  const int port = cluster__port(colon + 1, (size_t)(ep + elen - colon - 1));
  const char *host = ep;
  size_t hlen = (size_t)(colon - ep);
  if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
    host++;
    hlen -= 2;
  }
  if (port < 0 || hlen > CLUSTER_HOST_MAX)
    return CLUSTER_REDIR_NONE;
  memcpy(to->host, host, hlen);
  to->host[hlen] = '\0';
  to->port = port;
  *slot = (uint16_t)s;
  return kind;
}
