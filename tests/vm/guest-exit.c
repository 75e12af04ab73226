/* guest-exit.c -- end the QEMU guest with a status the host can read.
 *
 * QEMU's isa-debug-exit device (-device isa-debug-exit,iobase=0xf4,iosize=4)
 * makes QEMU exit as soon as the guest writes a value to I/O port 0xf4; the
 * QEMU process then exits with (value << 1) | 1.  The VM test's /init runs
 * this helper last: `guest-exit 0` makes QEMU exit with 1 (the guest passed),
 * `guest-exit 1` with 3 (it failed).  Any other QEMU exit status -- 0 after a
 * kernel panic and reboot, 124 from `timeout` -- means the guest never got
 * this far.
 *
 * Built statically (cc -static) so that it runs in the initramfs without a
 * dynamic loader.  Usage: guest-exit CODE (0..127). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>

#define DEBUG_EXIT_PORT 0xf4

int main(int argc, char **argv)
{
    char *end;
    long code;

    if (argc != 2) {
        fprintf(stderr, "usage: guest-exit CODE\n");
        return 2;
    }
    errno = 0;
    code = strtol(argv[1], &end, 10);
    if (errno || *end || end == argv[1] || code < 0 || code > 127) {
        fprintf(stderr, "guest-exit: CODE must be 0..127, not '%s'\n", argv[1]);
        return 2;
    }
    if (ioperm(DEBUG_EXIT_PORT, 4, 1) < 0) {
        fprintf(stderr, "guest-exit: ioperm(0x%x): %s\n", DEBUG_EXIT_PORT, strerror(errno));
        return 1;
    }
    outl((unsigned int)code, DEBUG_EXIT_PORT);
    /* only reached without the isa-debug-exit device */
    fprintf(stderr, "guest-exit: port 0x%x did not end the VM (no isa-debug-exit device?)\n",
            DEBUG_EXIT_PORT);
    return 1;
}
