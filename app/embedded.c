/* embedded.c -- compile files of the repository into the binary.
 *
 * The assembler's .incbin copies the file's bytes at build time; a trailing
 * NUL makes it a C string, and a length word after it spares a strlen().
 * The Makefile passes the absolute paths and makes this object depend on the
 * files, so editing policies/default.ini or app/page/ rebuilds the binary
 * and what is served can never drift from the repository.
 *
 * Embedded: policies/default.ini (the built-in policy) and the live page
 * (app/page/index.html, page.js, page.css), which is served from memory and
 * needs nothing on disk or from any other host. */
#include "embedded.h"

#include <stdint.h>

#if !defined(DEFAULT_POLICY_FILE) || !defined(PAGE_HTML_FILE) || !defined(PAGE_JS_FILE) ||      \
    !defined(PAGE_CSS_FILE)
#error "DEFAULT_POLICY_FILE and PAGE_*_FILE must name the files to embed (set by the Makefile)"
#endif

/* Defines `name` (the file's bytes and a NUL) and `name_len` (the length
 * without the NUL), both read-only and hidden from other objects. */
#define EMBED(name, file)                                                                      \
    __asm__(".section .rodata\n"                                                              \
            ".hidden " #name "\n"                                                              \
            ".global " #name "\n"                                                              \
            ".type " #name ", @object\n"                                                       \
            #name ":\n"                                                                        \
            ".incbin \"" file "\"\n"                                                           \
            ".L" #name "_end:\n"                                                               \
            ".byte 0\n"                                                                        \
            ".size " #name ", . - " #name "\n"                                                 \
            ".balign 8\n"                                                                      \
            ".hidden " #name "_len\n"                                                          \
            ".global " #name "_len\n"                                                          \
            ".type " #name "_len, @object\n"                                                   \
            #name "_len:\n"                                                                    \
            ".quad .L" #name "_end - " #name "\n"                                              \
            ".size " #name "_len, 8\n"                                                         \
            ".previous\n")

EMBED(governord_default_policy, DEFAULT_POLICY_FILE);
EMBED(governord_page_html, PAGE_HTML_FILE);
EMBED(governord_page_js, PAGE_JS_FILE);
EMBED(governord_page_css, PAGE_CSS_FILE);

extern const char governord_page_html[], governord_page_js[], governord_page_css[];
extern const uint64_t governord_page_html_len, governord_page_js_len, governord_page_css_len;

int embedded_page_asset(enum route r, struct embedded_asset *out)
{
    switch (r) {
    case ROUTE_INDEX:
        *out = (struct embedded_asset){governord_page_html, governord_page_html_len,
                                       "text/html; charset=utf-8"};
        return 0;
    case ROUTE_PAGE_JS:
        *out = (struct embedded_asset){governord_page_js, governord_page_js_len,
                                       "text/javascript; charset=utf-8"};
        return 0;
    case ROUTE_PAGE_CSS:
        *out = (struct embedded_asset){governord_page_css, governord_page_css_len,
                                       "text/css; charset=utf-8"};
        return 0;
    default:
        return -1;
    }
}
