/* als_wide_emu.c - the training's AVX-512 CG version (src/core/als.c's
 * als__cg_group_avx512: 16-float vectors, observations 8 at a time),
 * compiled a second time without the AVX-512 target and reported as
 * supported, as als_wide_emu_update_side_isa(). Its kernels are GCC
 * vector-extension code, so without the target they are the same
 * element-wise IEEE operations in the same order, lowered to the
 * baseline's registers: test_als checks them bit for bit against the
 * reference on CPUs without AVX-512 (the machines this project is built
 * on). It proves the kernels' blocking, tails and lock-step logic, not the
 * hardware or the speed. Every external name of als.c is renamed, so
 * this copy links beside the library's. */
#define ALS_WIDE_TARGET
#define ALS_WIDE_SUPPORTED() 1
#define als_factors_free als_wide_emu_factors_free
#define als_factors_init als_wide_emu_factors_init
#define als_gram als_wide_emu_gram
#define als_isa_default als_wide_emu_isa_default
#define als_isa_name als_wide_emu_isa_name
#define als_isa_supported als_wide_emu_isa_supported
#define als_loss als_wide_emu_loss
#define als_train als_wide_emu_train
#define als_update_side als_wide_emu_update_side
#define als_update_side_isa als_wide_emu_update_side_isa
#include "als.c"
