/* fuzz.h - what the libFuzzer targets share: the entry point's prototype
 * and CHECK, an invariant that stops the run (a trap is a finding, with
 * the input saved) in any build, NDEBUG or not. */
#ifndef RECD_FUZZ_H
#define RECD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      __builtin_trap();                                                                            \
  } while (0)

#endif
