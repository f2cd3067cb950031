/* tls.c - see tls.h. */
#define _DEFAULT_SOURCE /* timegm */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"

struct tls_conn {
  SSL *ssl;
  int ready;           /* handshake completed */
  size_t rpeak, wpeak; /* most bytes the read / write BIO held since it was new */
};

/* A memory BIO keeps the largest buffer it ever needed (BUF_MEM does not
 * shrink): after one 1 MB request or reply, a connection would hold 1 MB
 * for as long as it lives. A BIO that grew past this and is empty again
 * is replaced by a fresh one (with SSL_MODE_RELEASE_BUFFERS for OpenSSL's
 * own record buffers, an idle connection holds a few KB, not ~40 KB). */
#define TLS__BIO_KEEP (16 * 1024)

static BIO *tls__mem_bio(void) {
  BIO *b = BIO_new(BIO_s_mem());
  if (b != NULL)
    BIO_set_mem_eof_return(b, -1); /* empty means "no bytes yet", not EOF */
  return b;
}

/* The reason of the latest OpenSSL error ("wrong version number"), with
 * the queue cleared: errors of one connection must not leak into the next
 * one's message. */
static void tls__reason(char *out, size_t size) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
  if (r != NULL)
    snprintf(out, size, "%s", r);
  else if (e != 0)
    ERR_error_string_n(e, out, size);
  else
    snprintf(out, size, "unknown error");
  ERR_clear_error();
}

/* A passphrase-protected key would make PEM_read_PrivateKey prompt on the
 * terminal of a daemon: refuse it instead (no passphrase). */
static int tls__no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return 0;
}

static FILE *tls__open(const char *key, const char *path, char *errbuf, int *err) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL)
    *err = recd_errf(errbuf, RECD_EIO, "%s: cannot read '%s': %s", key, path, strerror(errno));
  return fp;
}

/* "TLSv1.2 TLSv1.3" -> the lowest and highest version (config_validate()
 * has checked the words). */
static int tls__protocols(const char *s, int *lo, int *hi, char *errbuf) {
  *lo = *hi = 0;
  char word[32];
  while (*s != '\0') {
    while (*s == ' ' || *s == '\t')
      s++;
    size_t n = strcspn(s, " \t");
    if (n == 0)
      break;
    snprintf(word, sizeof word, "%.*s", (int)(n < sizeof word ? n : sizeof word - 1), s);
    int v = strcasecmp(word, "TLSv1.2") == 0   ? TLS1_2_VERSION
            : strcasecmp(word, "TLSv1.3") == 0 ? TLS1_3_VERSION
                                                : 0;
    if (v == 0)
      return recd_errf(errbuf, RECD_EINVAL,
                       "tls-protocols: expected TLSv1.2 and/or TLSv1.3, got '%s'", word);
    if (*lo == 0 || v < *lo)
      *lo = v;
    if (v > *hi)
      *hi = v;
    s += n;
  }
  if (*lo == 0)
    return recd_errf(errbuf, RECD_EINVAL, "tls-protocols: no protocol given");
  return 0;
}

/* notAfter and serial of the certificate, for INFO and the reload logs. */
static void tls__cert_info(X509 *x, tls_creds_t *out) {
  struct tm tm;
  out->not_after = 0;
  if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
    out->not_after = (long long)timegm(&tm);
  snprintf(out->serial, sizeof out->serial, "?");
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
  if (hex != NULL)
    snprintf(out->serial, sizeof out->serial, "%s", hex);
  OPENSSL_free(hex);
  BN_free(bn);
}

int tls_creds_load(const config_t *cfg, tls_creds_t *out, char *errbuf) {
  char why[256];
  int err = 0;
  const char *cert = cfg->tls_cert_file, *key = cfg->tls_key_file, *ca = cfg->tls_ca_cert_file;
  X509 *x = NULL;
  EVP_PKEY *pkey = NULL;
  SSL_CTX *ctx = NULL;
  tls_creds_t next = {0};
  ERR_clear_error();

  /* The certificate and the key are read here rather than by
   * SSL_CTX_use_*_file so that each failure can name its own file. */
  FILE *fp = tls__open("tls-cert-file", cert, errbuf, &err);
  if (fp == NULL)
    goto fail;
  x = PEM_read_X509(fp, NULL, tls__no_passphrase, NULL);
  fclose(fp);
  if (x == NULL) {
    tls__reason(why, sizeof why);
    err = recd_errf(errbuf, RECD_EINVAL, "tls-cert-file: '%s' holds no PEM certificate (%s)",
                    cert, why);
    goto fail;
  }
  tls__cert_info(x, &next);
  if ((fp = tls__open("tls-key-file", key, errbuf, &err)) == NULL)
    goto fail;
  pkey = PEM_read_PrivateKey(fp, NULL, tls__no_passphrase, NULL);
  fclose(fp);
  if (pkey == NULL) {
    tls__reason(why, sizeof why);
    err = recd_errf(errbuf, RECD_EINVAL,
                    "tls-key-file: '%s' holds no usable PEM private key (%s; a key "
                    "protected by a passphrase is not supported)",
                    key, why);
    goto fail;
  }
  if (X509_check_private_key(x, pkey) != 1) {
    ERR_clear_error();
    err = recd_errf(errbuf, RECD_EINVAL,
                    "tls-key-file: '%s' does not match the certificate in tls-cert-file '%s'",
                    key, cert);
    goto fail;
  }

  if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
    err = recd_errf(errbuf, RECD_ENOMEM, "TLS: out of memory");
    goto fail;
  }
  /* The chain file: the certificate and any intermediates after it. */
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
    tls__reason(why, sizeof why);
    err = recd_errf(errbuf, RECD_EINVAL, "tls-cert-file: '%s': %s", cert, why);
    goto fail;
  }
  if (ca[0] != '\0') {
    if ((fp = tls__open("tls-ca-cert-file", ca, errbuf, &err)) == NULL)
      goto fail;
    fclose(fp);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (names == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      tls__reason(why, sizeof why);
      err = recd_errf(errbuf, RECD_EINVAL, "tls-ca-cert-file: '%s' holds no PEM certificate (%s)",
                      ca, why);
      goto fail;
    }
    /* Sent in the CertificateRequest, so that a client with several
     * certificates picks one this CA signed. */
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  switch (cfg->tls_auth_clients) {
  case CONFIG_TLS_AUTH_YES:
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    break;
  case CONFIG_TLS_AUTH_OPTIONAL: /* a certificate, if given, must verify */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    break;
  default:
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    break;
  }
  int lo, hi;
  if ((err = tls__protocols(cfg->tls_protocols, &lo, &hi, errbuf)) != 0)
    goto fail;
  SSL_CTX_set_min_proto_version(ctx, lo);
  SSL_CTX_set_max_proto_version(ctx, hi);
  if (cfg->tls_ciphersuites[0] != '\0' && SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1) {
    ERR_clear_error();
    err = recd_errf(errbuf, RECD_EINVAL, "tls-ciphersuites: OpenSSL knows none of '%s'",
                    cfg->tls_ciphersuites);
    goto fail;
  }
  /* No renegotiation (a client could make the server redo the expensive
   * half of a handshake at will) and no compression (CRIME). */
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* Connections are long-lived and few (a storefront's pool): session
   * resumption would save little and would need a ticket key that
   * survives reloads. Without tickets or a cache, no resumption; the
   * session id context is still set, as OpenSSL requires with client
   * verification. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  static const unsigned char sid[] = "recd";
  SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
  /* Replies are encrypted whole into a memory BIO: no partial writes, and
   * the buffer passed may move between calls (the reply buffer grows).
   * Record buffers are released while a connection is idle (see
   * TLS__BIO_KEEP). */
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);

  X509_free(x);
  EVP_PKEY_free(pkey);
  next.ctx = ctx;
  *out = next;
  return 0;
fail:
  SSL_CTX_free(ctx);
  X509_free(x);
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return err != 0 ? err : RECD_EINVAL;
}

void tls_creds_free(tls_creds_t *c) {
  SSL_CTX_free(c->ctx);
  c->ctx = NULL;
}

int tls_creds_expired(const tls_creds_t *c, long long now) {
  return c->not_after != 0 && c->not_after < now;
}

void tls_server_install(tls_server_t *t, tls_creds_t *next) {
  tls_creds_free(&t->cur);
  t->cur = *next;
  memset(next, 0, sizeof *next);
}

int tls_server_reload(tls_server_t *t, const config_t *cfg, const char *why) {
  char err[RECD_ERRLEN];
  tls_creds_t next;
  int rc = tls_creds_load(cfg, &next, err);
  if (rc != 0) {
    t->reloads_failed++;
    snprintf(t->last_reload_error, sizeof t->last_reload_error, "%s", err);
    log_warning("%s: TLS certificate not reloaded, new connections keep the previous one: %s",
                why, err);
    return rc;
  }
  tls_server_install(t, &next);
  t->reloads_ok++;
  t->last_reload_error[0] = '\0';
  log_notice("%s: TLS certificate reloaded from %s (serial %s); established connections keep "
             "theirs",
             why, cfg->tls_cert_file, t->cur.serial);
  if (tls_creds_expired(&t->cur, (long long)time(NULL)))
    log_warning("%s: the TLS certificate in %s has expired: clients will refuse it", why,
                cfg->tls_cert_file);
  return 0;
}

void tls_server_free(tls_server_t *t) {
  tls_creds_free(&t->cur);
}

/* ---- one connection ------------------------------------------------------ */

tls_conn_t *tls_conn_new(tls_server_t *t) {
  tls_conn_t *c = calloc(1, sizeof *c);
  BIO *rbio = tls__mem_bio(), *wbio = tls__mem_bio();
  SSL *ssl = t->cur.ctx != NULL ? SSL_new(t->cur.ctx) : NULL; /* takes a ctx reference */
  if (c == NULL || rbio == NULL || wbio == NULL || ssl == NULL) {
    free(c);
    BIO_free(rbio);
    BIO_free(wbio);
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_bio(ssl, rbio, wbio); /* the SSL owns both from here */
  SSL_set_accept_state(ssl);
  c->ssl = ssl;
  return c;
}

void tls_conn_free(tls_conn_t *c) {
  if (c == NULL)
    return;
  SSL_free(c->ssl);
  free(c);
}

int tls_conn_feed(tls_conn_t *c, const char *data, size_t n) {
  while (n > 0) {
    int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
    int w = BIO_write(SSL_get_rbio(c->ssl), data, chunk);
    if (w <= 0)
      return -1;
    data += w;
    n -= (size_t)w;
  }
  size_t p = BIO_ctrl_pending(SSL_get_rbio(c->ssl));
  if (p > c->rpeak)
    c->rpeak = p;
  return 0;
}

/* The reason of a failed SSL call; certificate verification failures carry
 * the verifier's own words ("certificate has expired"). */
static void tls__conn_reason(tls_conn_t *c, int rc, char *errbuf) {
  int e = SSL_get_error(c->ssl, rc);
  long v = SSL_get_verify_result(c->ssl);
  char why[200];
  if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
    snprintf(why, sizeof why, "unexpected end of data");
  else
    tls__reason(why, sizeof why);
  if (v != X509_V_OK)
    snprintf(errbuf, RECD_ERRLEN, "%s: %s", why, X509_verify_cert_error_string(v));
  else
    snprintf(errbuf, RECD_ERRLEN, "%s", why);
  ERR_clear_error();
}

int tls_conn_handshake(tls_conn_t *c, char *errbuf) {
  if (c->ready)
    return 1;
  int rc = SSL_do_handshake(c->ssl);
  if (rc == 1) {
    c->ready = 1;
    return 1;
  }
  int e = SSL_get_error(c->ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  tls__conn_reason(c, rc, errbuf);
  return -1;
}

int tls_conn_ready(const tls_conn_t *c) {
  return c->ready;
}

ssize_t tls_conn_read(tls_conn_t *c, char *buf, size_t n, char *errbuf) {
  size_t got = 0;
  int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
  if (SSL_read_ex(c->ssl, buf, (size_t)chunk, &got) == 1)
    return (ssize_t)got;
  int e = SSL_get_error(c->ssl, 0);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    /* Everything fed is consumed (a partial record waits in the SSL's own
     * buffer, not in the BIO): a grown BIO can go. */
    BIO *fresh;
    if (c->rpeak > TLS__BIO_KEEP && BIO_ctrl_pending(SSL_get_rbio(c->ssl)) == 0 &&
        (fresh = tls__mem_bio()) != NULL) {
      SSL_set0_rbio(c->ssl, fresh); /* frees the old one */
      c->rpeak = 0;
    }
    return TLS_WANT_MORE;
  }
  if (e == SSL_ERROR_ZERO_RETURN) {
    ERR_clear_error();
    return TLS_CLOSED;
  }
  tls__conn_reason(c, 0, errbuf);
  return TLS_FAILED;
}

int tls_conn_write(tls_conn_t *c, const char *data, size_t n, char *errbuf) {
  while (n > 0) {
    size_t w = 0;
    if (SSL_write_ex(c->ssl, data, n, &w) != 1) {
      tls__conn_reason(c, 0, errbuf);
      return -1;
    }
    data += w;
    n -= w;
  }
  return 0;
}

size_t tls_conn_pending(const tls_conn_t *c) {
  return BIO_ctrl_pending(SSL_get_wbio(c->ssl));
}

size_t tls_conn_take(tls_conn_t *c, char *buf, size_t n) {
  BIO *w = SSL_get_wbio(c->ssl);
  size_t got = 0, p = BIO_ctrl_pending(w);
  if (p > c->wpeak)
    c->wpeak = p;
  if (n > 0 && BIO_read_ex(w, buf, n, &got) != 1)
    return 0;
  BIO *fresh;
  if (c->wpeak > TLS__BIO_KEEP && BIO_ctrl_pending(w) == 0 && (fresh = tls__mem_bio()) != NULL) {
    SSL_set0_wbio(c->ssl, fresh); /* frees the old one */
    c->wpeak = 0;
  }
  return got;
}

void tls_conn_close_notify(tls_conn_t *c) {
  if (c->ready)
    SSL_shutdown(c->ssl); /* queues close_notify; the peer's is not awaited */
  ERR_clear_error();
}
