/* test_cluster_slot.c - Redis Cluster key slots (against Redis's documented
 * values and a bitwise CRC16), the seed list, the slot map and the parsing
 * of MOVED / ASK redirections (recd/cluster_slot.h). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "recd/cluster_slot.h"
#include "recd/err.h"
#include "recd/rng.h"

static uint16_t slot_of(const char *s) {
  return cluster_key_slot(s, strlen(s));
}

/* The obvious CRC16-XMODEM, one bit at a time. */
static uint16_t crc16_bitwise(const unsigned char *p, size_t len) {
  uint16_t crc = 0;
  for (size_t i = 0; i < len; i++) {
    crc ^= (uint16_t)(p[i] << 8);
    for (int b = 0; b < 8; b++)
      crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

START_TEST(test_crc16_check_value) {
  /* The CRC-16/XMODEM check value, as in Redis's crc16.c. */
  ck_assert_uint_eq(cluster_crc16("123456789", 9), 0x31C3);
  ck_assert_uint_eq(cluster_crc16("", 0), 0);
  rng_t r;
  rng_seed(&r, 15);
  unsigned char buf[300];
  for (int t = 0; t < 2000; t++) {
    size_t len = (size_t)(rng_next(&r) % sizeof buf);
    for (size_t i = 0; i < len; i++)
      buf[i] = (unsigned char)rng_next(&r);
    ck_assert_uint_eq(cluster_crc16(buf, len), crc16_bitwise(buf, len));
  }
}
END_TEST

START_TEST(test_known_slots) {
  /* CLUSTER KEYSLOT of Redis (the docs' examples and redis-cli's). */
  ck_assert_uint_eq(slot_of("foo"), 12182);
  ck_assert_uint_eq(slot_of("bar"), 5061);
  ck_assert_uint_eq(slot_of("somekey"), 11058);
  ck_assert_uint_eq(slot_of("foo{hash_tag}"), 2515);
  ck_assert_uint_eq(slot_of("123456789"), 0x31C3 % 16384);
  ck_assert_uint_eq(slot_of(""), 0);
}
END_TEST

START_TEST(test_hash_tags) {
  /* Keys with the same tag share a slot: the tag's. */
  ck_assert_uint_eq(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
  ck_assert_uint_eq(slot_of("{user1000}.following"), slot_of("user1000"));
  ck_assert_uint_eq(slot_of("foo{bar}zap"), slot_of("bar"));
  /* Only the first '{' counts, up to the first '}' after it. */
  ck_assert_uint_eq(slot_of("foo{{bar}}zap"), slot_of("{bar"));
  ck_assert_uint_eq(slot_of("foo{bar}{zap}"), slot_of("bar"));
  /* An empty tag, or none closed: the whole key. */
  ck_assert_uint_eq(slot_of("foo{}{bar}"), cluster_crc16("foo{}{bar}", 10) % 16384);
  ck_assert_uint_eq(slot_of("foo{bar"), cluster_crc16("foo{bar", 7) % 16384);
  ck_assert_uint_eq(slot_of("foo}bar{"), cluster_crc16("foo}bar{", 8) % 16384);
  /* Binary keys: the length, not a NUL, ends the key. */
  ck_assert_uint_eq(cluster_key_slot("a\0{x}", 5), slot_of("x"));
  ck_assert_uint_eq(cluster_key_slot("a\0b", 3), cluster_crc16("a\0b", 3) % 16384);
  /* recd's keys have no tags: hist: and time: of a customer may differ. */
  ck_assert_uint_ne(slot_of("recd:hist:user1"), slot_of("recd:time:user1"));
}
END_TEST

START_TEST(test_parse_nodes) {
  cluster_node_t *n;
  size_t k;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(cluster_parse_nodes("127.0.0.1:7000 localhost:7001,[::1]:7002\t h:1", &n,
                                       &k, err), 0);
  ck_assert_uint_eq(k, 4);
  ck_assert_str_eq(n[0].host, "127.0.0.1");
  ck_assert_int_eq(n[0].port, 7000);
  ck_assert_str_eq(n[1].host, "localhost");
  ck_assert_int_eq(n[1].port, 7001);
  ck_assert_str_eq(n[2].host, "::1");
  ck_assert_int_eq(n[2].port, 7002);
  ck_assert_str_eq(n[3].host, "h");
  ck_assert_int_eq(n[3].port, 1);
  free(n);
  const char *bad[] = {"", "   ", "127.0.0.1", "127.0.0.1:", ":7000", "h:0", "h:65536",
                       "h:70000x", "h:-1", "::1:7000", "[::1]7000", "[::1:7000", "h:7000 x"};
  const char *culprit[] = {"no node", "no node", "\"127.0.0.1\"", "\"127.0.0.1:\"", "\":7000\"",
                           "\"h:0\"", "\"h:65536\"", "\"h:70000x\"", "\"h:-1\"",
                           "\"::1:7000\"", "\"[::1]7000\"", "\"[::1:7000\"", "\"x\""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    ck_assert_msg(cluster_parse_nodes(bad[i], &n, &k, err) == RECD_EINVAL, "%s", bad[i]);
    ck_assert_ptr_null(n);
    ck_assert_msg(strstr(err, culprit[i]) != NULL, "%s: %s", bad[i], err);
  }
}
END_TEST

START_TEST(test_slot_map) {
  cluster_map_t m;
  cluster_map_init(&m);
  ck_assert_uint_eq(cluster_map_unserved(&m, NULL), 16384);
  int a = cluster_map_node(&m, "127.0.0.1", 9, 7000);
  int b = cluster_map_node(&m, "127.0.0.1", 9, 7001);
  ck_assert_int_eq(a, 0);
  ck_assert_int_eq(b, 1);
  ck_assert_int_eq(cluster_map_node(&m, "127.0.0.1:x", 9, 7000), a); /* hlen bytes only */
  ck_assert_int_eq(cluster_map_node(&m, "", 0, 7000), RECD_EINVAL);
  ck_assert_int_eq(cluster_map_node(&m, "h", 1, 0), RECD_EINVAL);
  ck_assert_int_eq(cluster_map_assign(&m, 0, 8191, a), 0);
  ck_assert_int_eq(cluster_map_assign(&m, 8192, 16383, b), 0);
  ck_assert_int_eq(cluster_map_assign(&m, 0, 16384, b), RECD_ERANGE);
  ck_assert_int_eq(cluster_map_assign(&m, 5, 4, b), RECD_ERANGE);
  ck_assert_int_eq(cluster_map_assign(&m, 0, 1, 2), RECD_ERANGE);
  ck_assert_int_eq(cluster_map_lookup(&m, 0), a);
  ck_assert_int_eq(cluster_map_lookup(&m, 8191), a);
  ck_assert_int_eq(cluster_map_lookup(&m, 8192), b);
  ck_assert_int_eq(cluster_map_lookup(&m, slot_of("foo")), b);
  ck_assert_uint_eq(cluster_map_unserved(&m, NULL), 0);
  /* A third node takes one slot; the others keep theirs. */
  int c = cluster_map_node(&m, "10.0.0.3", 8, 7002);
  ck_assert_int_eq(cluster_map_assign(&m, 12182, 12182, c), 0);
  ck_assert_int_eq(cluster_map_lookup(&m, slot_of("foo")), c);
  ck_assert_int_eq(cluster_map_lookup(&m, 12181), b);
  ck_assert(cluster_map_serves(&m, c));
  cluster_map_clear_slots(&m);
  uint32_t first = 99;
  ck_assert_uint_eq(cluster_map_unserved(&m, &first), 16384);
  ck_assert_uint_eq(first, 0);
  ck_assert(!cluster_map_serves(&m, c));
  ck_assert_uint_eq(m.n_nodes, 3); /* node indexes stay valid */
  ck_assert_int_eq(cluster_map_assign(&m, 0, 16382, a), 0);
  ck_assert_uint_eq(cluster_map_unserved(&m, &first), 1);
  ck_assert_uint_eq(first, 16383);
  ck_assert_int_eq(cluster_map_lookup(&m, 16383), -1);
  cluster_map_free(&m);
}
END_TEST

START_TEST(test_redirects) {
  cluster_node_t to;
  uint16_t slot = 0;
  const char *mv = "MOVED 3999 127.0.0.1:6381";
  ck_assert_int_eq(cluster_parse_redirect(mv, strlen(mv), &slot, &to), CLUSTER_REDIR_MOVED);
  ck_assert_uint_eq(slot, 3999);
  ck_assert_str_eq(to.host, "127.0.0.1");
  ck_assert_int_eq(to.port, 6381);
  const char *ask = "ASK 16383 redis-3.example:7005";
  ck_assert_int_eq(cluster_parse_redirect(ask, strlen(ask), &slot, &to), CLUSTER_REDIR_ASK);
  ck_assert_uint_eq(slot, 16383);
  ck_assert_str_eq(to.host, "redis-3.example");
  ck_assert_int_eq(to.port, 7005);
  const char *v6 = "MOVED 0 ::1:7000", *v6b = "MOVED 1 [::1]:7001", *same = "MOVED 2 :7002";
  ck_assert_int_eq(cluster_parse_redirect(v6, strlen(v6), &slot, &to), CLUSTER_REDIR_MOVED);
  ck_assert_str_eq(to.host, "::1");
  ck_assert_int_eq(to.port, 7000);
  ck_assert_int_eq(cluster_parse_redirect(v6b, strlen(v6b), &slot, &to), CLUSTER_REDIR_MOVED);
  ck_assert_str_eq(to.host, "::1");
  ck_assert_int_eq(cluster_parse_redirect(same, strlen(same), &slot, &to), CLUSTER_REDIR_MOVED);
  ck_assert_str_eq(to.host, ""); /* the replying node's host */
  ck_assert_int_eq(to.port, 7002);
  const char *no[] = {"ERR wrong", "MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1",
                      "MOVED 1 h", "MOVED 1 h:0", "ASK 1", "TRYAGAIN Multiple keys",
                      "CLUSTERDOWN The cluster is down", "MOVED 1 h:99999"};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    ck_assert_msg(cluster_parse_redirect(no[i], strlen(no[i]), &slot, &to) == CLUSTER_REDIR_NONE,
                  "%s", no[i]);
}
END_TEST

static Suite *cluster_slot_suite(void) {
  Suite *s = suite_create("cluster_slot");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_crc16_check_value);
  tcase_add_test(tc, test_known_slots);
  tcase_add_test(tc, test_hash_tags);
  tcase_add_test(tc, test_parse_nodes);
  tcase_add_test(tc, test_slot_map);
  tcase_add_test(tc, test_redirects);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(cluster_slot_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
