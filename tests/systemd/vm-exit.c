/* vm-exit.c -- ends the QEMU guest with a status the host can read.
 *
 * QEMU's isa-debug-exit device (iobase 0xf4) makes QEMU exit with
 * (value << 1) | 1 when the guest writes value to the port, so the host's
 * test sees the guest's verdict in QEMU's exit status: 1 for 0, 3 for 1.
 * Usage: vm-exit CODE (0..127). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char **argv)
{
    int code = argc > 1 ? atoi(argv[1]) : 1;
    if (ioperm(0xf4, 4, 1) < 0) {
        perror("vm-exit: ioperm");
        return 2;
    }
    fflush(NULL);
    outl((unsigned)code, 0xf4);
    return 0; /* not reached: QEMU is gone */
}
