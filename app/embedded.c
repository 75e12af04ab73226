/* embedded.c -- compile files of the repository into the binary.
 *
 * The assembler's .incbin copies the file's bytes at build time; a trailing
 * NUL makes it a C string.  The Makefile passes the absolute paths and makes
 * this object depend on the files, so editing policies/default.ini rebuilds
 * the binary and the embedded default can never drift from the preset. */
#include "embedded.h"

#ifndef DEFAULT_POLICY_FILE
#error "DEFAULT_POLICY_FILE must name policies/default.ini (set by the Makefile)"
#endif

__asm__(".section .rodata\n"
        ".hidden governord_default_policy\n"
        ".global governord_default_policy\n"
        ".type governord_default_policy, @object\n"
        "governord_default_policy:\n"
        ".incbin \"" DEFAULT_POLICY_FILE "\"\n"
        ".byte 0\n"
        ".size governord_default_policy, . - governord_default_policy\n"
        ".previous\n");
