/* test_rcluster.c - the pure parts of the daemon's Redis Cluster client
 * (rcluster.h): where a command goes (its key's slot, any master, every
 * master), whether keys share a slot (the split of FEEDBACK's and MERGE's
 * scripts), the copy of a hiredis reply that a fetch keeps while its other
 * parts come in, and the CLUSTER SLOTS parser shared with recd-train
 * (cluster_slots_reply.h). Replies are built by hiredis's own reader from
 * RESP text, so they are exactly what the async client hands over. The
 * client itself runs against a real cluster in
 * tests/cli/test_daemon_cluster.sh.
 */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cluster_slots_reply.h"
#include "rcluster.h"
#include "recd/cluster_slot.h"
#include "recd/err.h"
#include "recd/keys.h"

static uint16_t slot_of(const char *k) {
  return cluster_key_slot(k, strlen(k));
}

/* rcluster_route on a NULL-terminated argv. */
static rcluster_route_t route(uint16_t *slot, ...) {
  const char *argv[16];
  size_t lens[16];
  int argc = 0;
  va_list ap;
  va_start(ap, slot);
  for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
    argv[argc] = a;
    lens[argc++] = strlen(a);
  }
  va_end(ap);
  return rcluster_route(argc, argv, lens, slot);
}

START_TEST(test_route) {
  uint16_t s = 1;
  /* a key command: its first argument */
  ck_assert_int_eq(route(&s, "ZREVRANGE", "recd:hist:alice", "0", "9", "WITHSCORES", NULL),
                   RCLUSTER_ROUTE_KEY);
  ck_assert_uint_eq(s, slot_of("recd:hist:alice"));
  ck_assert_int_eq(route(&s, "hgetall", "recd:pref:bob", NULL), RCLUSTER_ROUTE_KEY);
  ck_assert_uint_eq(s, slot_of("recd:pref:bob"));
  /* a hash tag: the tag's slot */
  ck_assert_int_eq(route(&s, "SMEMBERS", "recd:hidden:{u1}", NULL), RCLUSTER_ROUTE_KEY);
  ck_assert_uint_eq(s, slot_of("u1"));
  /* scripts: the first key (argv[3]), whatever the arguments */
  ck_assert_int_eq(route(&s, "EVALSHA", "0123456789012345678901234567890123456789", "2",
                         "recd:hist:carol", "recd:time:carol", "1.5", NULL),
                   RCLUSTER_ROUTE_KEY);
  ck_assert_uint_eq(s, slot_of("recd:hist:carol"));
  ck_assert_int_eq(route(&s, "eval", "return 1", "1", "recd:imp:dave", NULL), RCLUSTER_ROUTE_KEY);
  ck_assert_uint_eq(s, slot_of("recd:imp:dave"));
  ck_assert_int_eq(route(&s, "FCALL", "f", "1", "k", NULL), RCLUSTER_ROUTE_KEY);
  ck_assert_uint_eq(s, slot_of("k"));
  /* scripts without keys, or a key count that is no count: any master */
  ck_assert_int_eq(route(&s, "EVAL", "return 1", "0", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(route(&s, "EVAL", "return 1", "0", "arg", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(route(&s, "EVAL", "return 1", "x1", "k", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(route(&s, "EVAL", "return 1", "", "k", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(route(&s, "EVALSHA", "abc", NULL), RCLUSTER_ROUTE_ANY);
  /* SCRIPT LOAD (and FLUSH, EXISTS) to every master */
  ck_assert_int_eq(route(&s, "SCRIPT", "LOAD", "return 1", NULL), RCLUSTER_ROUTE_ALL);
  ck_assert_int_eq(route(&s, "script", "flush", NULL), RCLUSTER_ROUTE_ALL);
  /* no key */
  ck_assert_int_eq(route(&s, "PING", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(route(&s, "PING", "hello", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(route(&s, "INFO", "server", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(route(&s, "CLUSTER", "SLOTS", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(route(&s, "DBSIZE", NULL), RCLUSTER_ROUTE_ANY);
  ck_assert_int_eq(rcluster_route(0, NULL, NULL, &s), RCLUSTER_ROUTE_ANY);
  /* a binary-safe key with a NUL byte */
  const char *argv[2] = {"GET", "a\0b"};
  const size_t lens[2] = {3, 3};
  ck_assert_int_eq(rcluster_route(2, argv, lens, &s), RCLUSTER_ROUTE_KEY);
  ck_assert_uint_eq(s, cluster_key_slot("a\0b", 3));
}
END_TEST

/* The keys recd builds for one customer (prefix recd:). */
static void keys_of(const char *user, const char *const *kinds, size_t n, char (*buf)[RECD_KEY_MAX],
                    const char **keys, size_t *lens) {
  for (size_t i = 0; i < n; i++) {
    lens[i] = recd_key(buf[i], "recd:", 5, kinds[i], user, strlen(user));
    keys[i] = buf[i];
  }
}

START_TEST(test_one_slot) {
  static const char *const fb[2] = {RECD_KEY_HIST, RECD_KEY_TIME};
  char buf[8][RECD_KEY_MAX];
  const char *keys[8];
  size_t lens[8];
  /* FEEDBACK's two keys: two slots for a plain id (the split), one for a
   * hash-tagged id (the atomic script) */
  keys_of("alice", fb, 2, buf, keys, lens);
  ck_assert_uint_ne(slot_of(keys[0]), slot_of(keys[1]));
  ck_assert_int_eq(rcluster_one_slot(2, keys, lens), 0);
  keys_of("{alice}", fb, 2, buf, keys, lens);
  ck_assert_int_eq(rcluster_one_slot(2, keys, lens), 1);
  keys_of("{alice}:web", fb, 2, buf, keys, lens);
  ck_assert_int_eq(rcluster_one_slot(2, keys, lens), 1);
  /* an empty tag hashes the whole key: two slots */
  keys_of("{}alice", fb, 2, buf, keys, lens);
  ck_assert_int_eq(rcluster_one_slot(2, keys, lens), 0);
  ck_assert_int_eq(rcluster_one_slot(1, keys, lens), 1);
  ck_assert_int_eq(rcluster_one_slot(0, keys, lens), 1);
  /* MERGE's eight keys of two ids sharing a tag: one slot */
  static const char *const mk[8] = {RECD_KEY_HIST,   RECD_KEY_HIST, RECD_KEY_HIDDEN,
                                    RECD_KEY_HIDDEN, RECD_KEY_IMP,  RECD_KEY_IMP,
                                    RECD_KEY_TIME,   RECD_KEY_TIME};
  for (size_t k = 0; k < 8; k++) {
    const char *who = k % 2 ? "{c42}:app" : "{c42}:web";
    lens[k] = recd_key(buf[k], "recd:", 5, mk[k], who, strlen(who));
    keys[k] = buf[k];
  }
  ck_assert_int_eq(rcluster_one_slot(8, keys, lens), 1);
  lens[7] = recd_key(buf[7], "recd:", 5, RECD_KEY_TIME, "c42", 3);
  ck_assert_int_eq(rcluster_one_slot(8, keys, lens), 0);
}
END_TEST

/* The first reply hiredis's reader makes of resp (exactly as the async
 * client gets it). */
static redisReply *parse(const char *resp, size_t len) {
  redisReader *rd = redisReaderCreate();
  ck_assert_ptr_nonnull(rd);
  ck_assert_int_eq(redisReaderFeed(rd, resp, len), REDIS_OK);
  void *r = NULL;
  ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
  ck_assert_ptr_nonnull(r);
  void *more = NULL; /* the text was exactly one reply */
  ck_assert_int_eq(redisReaderGetReply(rd, &more), REDIS_OK);
  ck_assert_ptr_null(more);
  redisReaderFree(rd);
  return r;
}
#define PARSE(lit) parse(lit, sizeof lit - 1)

static void assert_same_reply(const redisReply *a, const redisReply *b) {
  ck_assert_ptr_ne(a, b);
  ck_assert_int_eq(a->type, b->type);
  ck_assert_int_eq(a->integer, b->integer);
  ck_assert_uint_eq(a->len, b->len);
  if (a->str != NULL) {
    ck_assert_ptr_nonnull(b->str);
    ck_assert_ptr_ne(a->str, b->str);
    ck_assert_int_eq(memcmp(a->str, b->str, a->len), 0);
    ck_assert_int_eq(b->str[b->len], '\0');
  } else {
    ck_assert_ptr_null(b->str);
  }
  ck_assert_uint_eq(a->elements, b->elements);
  for (size_t i = 0; i < a->elements; i++)
    assert_same_reply(a->element[i], b->element[i]);
}

START_TEST(test_reply_dup) {
#define R(lit) {lit, sizeof lit - 1}
  static const struct {
    const char *resp;
    size_t len;
  } resps[] = {
    /* a history: ZREVRANGE ... WITHSCORES, binary-safe ids */
    R("*4\r\n$5\r\nitem1\r\n$3\r\n2.5\r\n$3\r\na\0b\r\n$1\r\n1\r\n"),
    R(":42\r\n"),
    R("$-1\r\n"),
    R("*-1\r\n"),
    R("*0\r\n"),
    R("+OK\r\n"),
    R("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
    R("$0\r\n\r\n"),
    /* nested, as CLUSTER SLOTS */
    R("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"),
  };
#undef R
  for (size_t i = 0; i < sizeof resps / sizeof resps[0]; i++) {
    redisReply *r = parse(resps[i].resp, resps[i].len);
    redisReply *d = rcluster_reply_dup(r);
    ck_assert_ptr_nonnull(d);
    assert_same_reply(r, d);
    freeReplyObject(r); /* the copy outlives hiredis's reply */
    rcluster_reply_free(d);
  }
  rcluster_reply_free(NULL);
}
END_TEST

/* CLUSTER SLOTS of a three-master cluster, one range on the replying node
 * (empty endpoint), one with an unknown endpoint ("?": unserved). */
START_TEST(test_parse_slots) {
  redisReply *r = PARSE("*4\r\n"
                        "*4\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nm1\r\n"
                        "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$2\r\nr1\r\n"
                        "*3\r\n:5461\r\n:10922\r\n*3\r\n$0\r\n\r\n:7001\r\n$2\r\nm2\r\n"
                        "*3\r\n:10923\r\n:16000\r\n*3\r\n$3\r\n::1\r\n:7002\r\n$2\r\nm3\r\n"
                        "*3\r\n:16001\r\n:16383\r\n*3\r\n$1\r\n?\r\n:7004\r\n$2\r\nm4\r\n");
  cluster_map_t m;
  cluster_map_init(&m);
  char err[RECD_ERRLEN] = "";
  /* a seed already known keeps its index */
  ck_assert_int_eq(cluster_map_node(&m, "127.0.0.1", 9, 7001), 0);
  ck_assert_int_eq(cluster_slots_parse_reply(r, "10.0.0.9", &m, err), 0);
  ck_assert_int_eq(cluster_map_lookup(&m, 0), 1);
  ck_assert_str_eq(m.nodes[1].host, "127.0.0.1");
  ck_assert_int_eq(m.nodes[1].port, 7000);
  ck_assert_int_eq(cluster_map_lookup(&m, 5460), 1);
  /* the empty endpoint is the replier's host */
  const int n2 = cluster_map_lookup(&m, 5461);
  ck_assert_str_eq(m.nodes[n2].host, "10.0.0.9");
  ck_assert_int_eq(m.nodes[n2].port, 7001);
  const int n3 = cluster_map_lookup(&m, 12000); /* IPv6 as Redis writes it: no brackets */
  ck_assert_str_eq(m.nodes[n3].host, "::1");
  ck_assert_int_eq(cluster_map_lookup(&m, 16001), -1);
  uint32_t first = 0;
  ck_assert_uint_eq(cluster_map_unserved(&m, &first), 16383 - 16001 + 1);
  ck_assert_uint_eq(first, 16001);
  /* replicas are not masters of the map */
  for (size_t i = 0; i < m.n_nodes; i++)
    ck_assert(m.nodes[i].port != 7003 || !cluster_map_serves(&m, (int)i));
  freeReplyObject(r);

  /* a new reply replaces the slots, nodes stay */
  const size_t before = m.n_nodes;
  r = PARSE("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7001\r\n");
  ck_assert_int_eq(cluster_slots_parse_reply(r, "x", &m, err), 0);
  ck_assert_uint_eq(m.n_nodes, before);
  ck_assert_int_eq(cluster_map_lookup(&m, 0), 0);
  ck_assert_uint_eq(cluster_map_unserved(&m, NULL), 0);
  freeReplyObject(r);

  r = PARSE("-ERR This instance has cluster support disabled\r\n");
  ck_assert_int_eq(cluster_slots_parse_reply(r, "x", &m, err), RECD_EREDIS);
  ck_assert_str_eq(err, "redis cluster: CLUSTER SLOTS: ERR This instance has cluster support "
                        "disabled");
  freeReplyObject(r);
  r = PARSE(":1\r\n");
  ck_assert_int_eq(cluster_slots_parse_reply(r, "x", &m, err), RECD_EREDIS);
  freeReplyObject(r);
  r = PARSE("*1\r\n*3\r\n:5\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n");
  ck_assert_int_eq(cluster_slots_parse_reply(r, "x", &m, err), RECD_EREDIS);
  ck_assert_str_eq(err, "redis cluster: CLUSTER SLOTS range 5-3");
  freeReplyObject(r);
  r = PARSE("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$1\r\nh\r\n:0\r\n");
  ck_assert_int_eq(cluster_slots_parse_reply(r, "x", &m, err), RECD_EREDIS);
  ck_assert_str_eq(err, "redis cluster: CLUSTER SLOTS names the bad endpoint h:0");
  freeReplyObject(r);
  r = PARSE("*1\r\n*2\r\n:0\r\n:3\r\n");
  ck_assert_int_eq(cluster_slots_parse_reply(r, "x", &m, err), RECD_EREDIS);
  freeReplyObject(r);
  cluster_map_free(&m);
}
END_TEST

static Suite *rcluster_suite(void) {
  Suite *s = suite_create("rcluster");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_route);
  tcase_add_test(tc, test_one_slot);
  tcase_add_test(tc, test_reply_dup);
  tcase_add_test(tc, test_parse_slots);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(rcluster_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
