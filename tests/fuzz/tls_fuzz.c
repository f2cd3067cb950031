/* tls_fuzz.c - libFuzzer target for the TLS server side of recd (tls.c),
 * the code conn.c runs on every byte a client sends to tls-port.
 *
 * Credentials: a self-signed P-256 certificate made at start-up, loaded
 * through tls_creds_load() exactly as the daemon loads its files, with
 * client certificates required (tls-auth-clients yes, the same certificate
 * as the CA).
 *
 * Input: byte 0 picks the mode, the rest is the payload.
 *  - raw (bit 0 set): the payload is what a client sends, fed in chunks
 *    of 1 + (byte 0 >> 1) bytes through tls_conn_feed / handshake / read,
 *    as conn.c does; whatever happens, no crash, no leak, and a connection
 *    is never "ready" without a verified client certificate;
 *  - man in the middle (bit 0 clear): an in-process OpenSSL client with a
 *    good certificate does a real handshake with the server through
 *    memory BIOs, then sends the payload as application data; with bit 1
 *    set, one byte of the client's ciphertext (at the offset in bytes 1-2
 *    of the payload) is flipped on the way. Invariants: the plaintext the
 *    server hands out is always a prefix of what the client sent (a
 *    flipped byte may only end the stream, never change it), all of it
 *    when nothing was flipped, and the server's encrypted echo reads back
 *    the same on the client.
 *
 * Build and run: scripts/fuzz.sh (RECD_FUZZ=ON builds every tests/fuzz target).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "tls.h"
#include "fuzz.h"

static tls_server_t server;
static SSL_CTX *client_ctx;

static void write_pem(char *path, X509 *x, EVP_PKEY *k) {
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  FILE *fp = fdopen(fd, "w");
  CHECK(fp != NULL);
  CHECK(x != NULL ? PEM_write_X509(fp, x) == 1
                  : PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) == 1);
  CHECK(fclose(fp) == 0);
}

static void setup(void) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  CHECK(k != NULL && x != NULL);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
  X509_NAME *n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
  X509_set_issuer_name(x, n);
  X509_set_pubkey(x, k);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
  CHECK(ext != NULL && X509_add_ext(x, ext, -1) == 1);
  X509_EXTENSION_free(ext);
  CHECK(X509_sign(x, k, EVP_sha256()) > 0);

  char crt[] = "/tmp/recd-tls-fuzz-crt-XXXXXX", key[] = "/tmp/recd-tls-fuzz-key-XXXXXX";
  write_pem(crt, x, NULL);
  write_pem(key, NULL, k);
  config_t cfg;
  char err[RECD_ERRLEN];
  CHECK(config_init(&cfg) == 0);
  CHECK(config_set(&cfg, "tls-port", "6380", err) == 0);
  CHECK(config_set(&cfg, "tls-cert-file", crt, err) == 0);
  CHECK(config_set(&cfg, "tls-key-file", key, err) == 0);
  CHECK(config_set(&cfg, "tls-ca-cert-file", crt, err) == 0);
  CHECK(config_validate(&cfg, err) == 0);
  tls_creds_t creds;
  int rc = tls_creds_load(&cfg, &creds, err);
  if (rc != 0)
    fprintf(stderr, "tls_fuzz: %s\n", err);
  CHECK(rc == 0);
  tls_server_install(&server, &creds);
  config_free(&cfg);
  unlink(crt);
  unlink(key);

  client_ctx = SSL_CTX_new(TLS_client_method());
  CHECK(client_ctx != NULL);
  CHECK(SSL_CTX_use_certificate(client_ctx, x) == 1);
  CHECK(SSL_CTX_use_PrivateKey(client_ctx, k) == 1);
  CHECK(X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), x) == 1);
  SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
  X509_free(x);
  EVP_PKEY_free(k);
}

/* Raw bytes from a stranger. */
static void run_raw(size_t chunk, const uint8_t *p, size_t n) {
  tls_conn_t *s = tls_conn_new(&server);
  CHECK(s != NULL);
  char err[RECD_ERRLEN], buf[4096], out[1 << 14];
  int failed = 0;
  for (size_t off = 0; off < n && !failed; off += chunk) {
    size_t k = n - off < chunk ? n - off : chunk;
    CHECK(tls_conn_feed(s, (const char *)p + off, k) == 0);
    if (!tls_conn_ready(s)) {
      int hs = tls_conn_handshake(s, err);
      failed = hs < 0;
      /* a handshake needs the client key's signature: never from raw bytes */
      CHECK(hs <= 0);
      if (hs <= 0) {
        while (tls_conn_take(s, out, sizeof out) > 0) {
        }
        continue;
      }
    }
    for (;;) {
      ssize_t r = tls_conn_read(s, buf, sizeof buf, err);
      CHECK(r >= TLS_FAILED && r <= (ssize_t)sizeof buf);
      if (r <= 0) {
        failed = r != TLS_WANT_MORE;
        break;
      }
    }
    while (tls_conn_take(s, out, sizeof out) > 0) {
    }
  }
  tls_conn_free(s);
}

/* Moves the ciphertext of one side to the other; flips the byte at
 * *flip_at (counted over everything moved so far) when it passes. */
static void pump(SSL *client, tls_conn_t *s, long *flip_at, size_t *moved) {
  char buf[1 << 14];
  int k;
  while ((k = BIO_read(SSL_get_wbio(client), buf, sizeof buf)) > 0) {
    if (*flip_at >= 0 && (size_t)*flip_at >= *moved && (size_t)*flip_at < *moved + (size_t)k) {
      buf[*flip_at - (long)*moved] ^= 0x5a;
      *flip_at = -2; /* done */
    }
    *moved += (size_t)k;
    CHECK(tls_conn_feed(s, buf, (size_t)k) == 0);
  }
}

static void drain_server(tls_conn_t *s, SSL *client) {
  char buf[1 << 14];
  size_t k;
  while ((k = tls_conn_take(s, buf, sizeof buf)) > 0)
    CHECK(BIO_write(SSL_get_rbio(client), buf, (int)k) == (int)k);
}

static void run_mitm(int flip, const uint8_t *p, size_t n) {
  long flip_at = -1;
  if (flip && n >= 2) {
    flip_at = (long)(p[0] | p[1] << 8);
    p += 2;
    n -= 2;
  }
  size_t moved = 0;
  tls_conn_t *s = tls_conn_new(&server);
  SSL *c = SSL_new(client_ctx);
  CHECK(s != NULL && c != NULL);
  BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rb, -1);
  SSL_set_bio(c, rb, wb);
  SSL_set_connect_state(c);
  char err[RECD_ERRLEN];
  int server_failed = 0, client_done = 0;
  for (int round = 0; round < 8 && !server_failed; round++) {
    int rc = SSL_do_handshake(c);
    client_done = rc == 1;
    pump(c, s, &flip_at, &moved);
    if (!tls_conn_ready(s)) {
      int hs = tls_conn_handshake(s, err);
      server_failed = hs < 0;
    }
    drain_server(s, c);
    if (client_done && tls_conn_ready(s))
      break;
  }
  ERR_clear_error();
  if (flip_at != -2) /* nothing flipped: the handshake must succeed */
    CHECK(client_done && tls_conn_ready(s));
  if (client_done && !server_failed) {
    /* the payload as application data, in records of up to 1000 bytes */
    for (size_t off = 0; off < n; off += 1000) {
      size_t k = n - off < 1000 ? n - off : 1000;
      size_t w = 0;
      CHECK(SSL_write_ex(c, p + off, k, &w) == 1 && w == k);
    }
    pump(c, s, &flip_at, &moved);
    if (!tls_conn_ready(s))
      (void)tls_conn_handshake(s, err);
    char *got = malloc(n + 1);
    size_t have = 0;
    int end = 0;
    CHECK(got != NULL);
    while (tls_conn_ready(s) && !end) {
      char buf[777]; /* not a record size: reads straddle records */
      ssize_t r = tls_conn_read(s, buf, sizeof buf, err);
      if (r <= 0) {
        end = 1;
        break;
      }
      CHECK(have + (size_t)r <= n);
      memcpy(got + have, buf, (size_t)r);
      have += (size_t)r;
    }
    CHECK(have == 0 || memcmp(got, p, have) == 0); /* never altered */
    if (flip_at != -2) { /* nothing flipped: everything, unchanged */
      CHECK(have == n);
      /* the server's echo reads back the same on the client */
      if (n > 0) {
        CHECK(tls_conn_write(s, got, n, err) == 0);
        drain_server(s, c);
        size_t back = 0, r = 0;
        char *echo = malloc(n);
        CHECK(echo != NULL);
        while (back < n && SSL_read_ex(c, echo + back, n - back, &r) == 1)
          back += r;
        CHECK(back == n && memcmp(echo, p, n) == 0);
        free(echo);
      }
    }
    free(got);
  }
  tls_conn_close_notify(s);
  drain_server(s, c);
  SSL_free(c);
  tls_conn_free(s);
  ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (client_ctx == NULL)
    setup();
  if (size < 1 || size > 1 << 16)
    return 0;
  uint8_t mode = data[0];
  if (mode & 1)
    run_raw(1 + (size_t)(mode >> 1), data + 1, size - 1);
  else
    run_mitm((mode & 2) != 0, data + 1, size - 1);
  return 0;
}
