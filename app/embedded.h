/* embedded.h -- files compiled into the binary (see embedded.c). */
#ifndef APP_EMBEDDED_H
#define APP_EMBEDDED_H

/* policies/default.ini, NUL-terminated: the policy used when no policy file
 * exists, so that governord runs with no configuration at all. */
extern const char governord_default_policy[];

#endif
