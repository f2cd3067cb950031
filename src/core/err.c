/* err.c - error names and messages generated from RECD_ERR_MAP. */
#include "recd/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *recd_err_name(int err) {
  switch (err) {
  case RECD_OK: return "RECD_OK";
#define RECD__ERR_NAME(name, code, msg) case code: return "RECD_E" #name;
    RECD_ERR_MAP(RECD__ERR_NAME)
#undef RECD__ERR_NAME
  default: return "unknown";
  }
}

const char *recd_strerror(int err) {
  switch (err) {
  case RECD_OK: return "success";
#define RECD__ERR_MSG(name, code, msg) case code: return msg;
    RECD_ERR_MAP(RECD__ERR_MSG)
#undef RECD__ERR_MSG
  default: return "unknown error";
  }
}

int recd_errf(char *errbuf, int err, const char *fmt, ...) {
  if (errbuf != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, RECD_ERRLEN, fmt, ap);
    va_end(ap);
  }
  return err;
}

size_t recd_escape_byte(char *out, unsigned char c, const char *also) {
  static const char hex[] = "0123456789abcdef";
  if (c >= 0x20 && c < 0x7f && c != '\\' && (also == NULL || strchr(also, c) == NULL)) {
    out[0] = (char)c;
    return 1;
  }
  out[0] = '\\';
  out[1] = 'x';
  out[2] = hex[c >> 4];
  out[3] = hex[c & 15];
  return 4;
}
