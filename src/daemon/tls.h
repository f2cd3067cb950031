/* tls.h - TLS on the client port (`tls-port`), OpenSSL over libuv streams
 * (issue 17).
 *
 * The socket stays a plain libuv stream. Each TLS connection has an SSL
 * object whose I/O goes through two memory BIOs, so OpenSSL never touches
 * the socket: conn.c hands the ciphertext it reads to tls_conn_feed(),
 * decrypts with tls_conn_read() straight into the RESP parser's buffer,
 * encrypts replies with tls_conn_write() and sends what tls_conn_take()
 * hands out with uv_write. Back-pressure, the output buffer limit, the
 * graceful close and the loop therefore stay conn.c's, for TLS and plain
 * clients alike; a plain client never reaches this module (no extra copy).
 *
 * Credentials: tls_creds_load() builds an SSL_CTX from the config (the
 * certificate chain, its key, the CA that signs client certificates, the
 * verify mode of tls-auth-clients, tls-protocols and tls-ciphersuites);
 * every error names the key and the file ("tls-key-file: '/etc/recd/k.pem'
 * does not match the certificate in tls-cert-file '/etc/recd/c.pem'").
 * tls_server_install() makes new credentials the ones new connections get.
 * Established connections keep the SSL_CTX their SSL was made from:
 * SSL_new() takes a reference on it and SSL_CTX is refcounted, so the old
 * context lives until its last connection closes, and a reload (SIGHUP,
 * CONFIG SET tls-cert-file) drops nobody.
 *
 * Everything here runs on the loop thread.
 */
#ifndef RECD_DAEMON_TLS_H
#define RECD_DAEMON_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* A connection that has not completed its handshake this long after
 * accept is closed (and counted as a handshake failure): a stranger must
 * not hold a connection slot by starting a handshake and stalling. */
#define TLS_HANDSHAKE_TIMEOUT_MS 10000

#define TLS_SERIAL_MAX 96

struct ssl_ctx_st;

/* One loaded set of credentials. */
typedef struct tls_creds {
  struct ssl_ctx_st *ctx;      /* NULL when none */
  long long not_after;         /* the certificate's notAfter, unix time */
  char serial[TLS_SERIAL_MAX]; /* its serial number, hex */
} tls_creds_t;

/* The server's TLS state: the credentials for new connections and the
 * counters of INFO. */
typedef struct tls_server {
  tls_creds_t cur;
  uint64_t connections;        /* handshakes completed */
  uint64_t handshake_failures; /* failed, timed out or abandoned handshakes */
  uint64_t reloads_ok, reloads_failed;
  char last_reload_error[RECD_ERRLEN];
} tls_server_t;

/* Builds credentials from cfg's tls-* keys (cfg is validated: a cert and
 * key are named). Returns 0, or a negative RECD_E* code with a message
 * naming the key and the file in errbuf; *out is then untouched. */
int tls_creds_load(const config_t *cfg, tls_creds_t *out, char *errbuf);
/* Drops the server's reference on the context (connections keep theirs). */
void tls_creds_free(tls_creds_t *c);
/* Whether the loaded certificate's notAfter is before `now` (unix time). */
int tls_creds_expired(const tls_creds_t *c, long long now);

/* Takes *next (which is then cleared) as the credentials of new
 * connections; the previous ones are released. */
void tls_server_install(tls_server_t *t, tls_creds_t *next);
/* Reloads the files cfg names (SIGHUP): on success the new credentials
 * serve new connections; on failure the old ones stay, the error is
 * logged and kept for INFO. `why` starts the log lines. 0 or the error. */
int tls_server_reload(tls_server_t *t, const config_t *cfg, const char *why);
void tls_server_free(tls_server_t *t);

/* ---- one connection ------------------------------------------------------ */

typedef struct tls_conn tls_conn_t;

/* Results of tls_conn_read() besides a byte count. */
#define TLS_WANT_MORE 0   /* every decrypted byte was handed out */
#define TLS_CLOSED (-1)   /* the peer sent close_notify */
#define TLS_FAILED (-2)   /* a TLS error: the connection cannot go on */

/* A server-side TLS connection on t's current context; NULL when out of
 * memory. */
tls_conn_t *tls_conn_new(tls_server_t *t);
void tls_conn_free(tls_conn_t *c);
/* Ciphertext read from the socket. 0, or -1 when out of memory. */
int tls_conn_feed(tls_conn_t *c, const char *data, size_t n);
/* Advances the handshake with what was fed: 1 done, 0 more bytes needed,
 * -1 failed (the reason in errbuf: "wrong version number" for a plain
 * client, "certificate verify failed: certificate has expired", ...). The
 * bytes to send (handshake messages, or the alert of a failure) are then
 * in tls_conn_pending(). */
int tls_conn_handshake(tls_conn_t *c, char *errbuf);
int tls_conn_ready(const tls_conn_t *c);
/* Decrypts into buf[0, n): a byte count > 0, TLS_WANT_MORE, TLS_CLOSED or
 * TLS_FAILED (the reason in errbuf). */
ssize_t tls_conn_read(tls_conn_t *c, char *buf, size_t n, char *errbuf);
/* Encrypts data[0, n) (all of it: the memory BIO never blocks). 0, or -1
 * with the reason in errbuf. Only once ready. */
int tls_conn_write(tls_conn_t *c, const char *data, size_t n, char *errbuf);
/* Ciphertext waiting to be sent, and taking it out (up to n bytes; returns
 * how many). */
size_t tls_conn_pending(const tls_conn_t *c);
size_t tls_conn_take(tls_conn_t *c, char *buf, size_t n);
/* Queues the close_notify alert (graceful close); a no-op before the
 * handshake is done. */
void tls_conn_close_notify(tls_conn_t *c);

#endif
