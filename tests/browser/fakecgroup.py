"""fakecgroup.py -- a directory that looks like a cgroup v2 memory cgroup.

governord --cgroup DIR reads DIR exactly as it reads cgroupfs, so the files
here use the kernel's formats (Linux 6.1, Debian 12): single values with a
newline ("max" for no limit), memory.stat with the full key list in the
kernel's order, memory.events with all six keys, memory.pressure in PSI
format.  Values are whole pages, as the kernel reports them.

Files are replaced atomically (write a temporary file, rename it over the
old one): governord holds the files open and reopens one when it was
replaced, so it never sees a half-written file.  memory.events is written
only at creation: governord watches it (inotify here, POLLPRI on cgroupfs).
"""

import os

PAGE = 4096
MiB = 1 << 20

# memory.stat keys of Linux 6.1 in the kernel's order
STAT_KEYS = [
    "anon", "file", "kernel", "kernel_stack", "pagetables", "percpu", "sock", "vmalloc",
    "shmem", "zswap", "zswapped", "file_mapped", "file_dirty", "file_writeback",
    "swapcached", "anon_thp", "file_thp", "shmem_thp", "inactive_anon", "active_anon",
    "inactive_file", "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable",
    "slab", "workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon",
    "workingset_activate_file", "workingset_restore_anon", "workingset_restore_file",
    "workingset_nodereclaim", "pgscan", "pgsteal", "pgscan_kswapd", "pgscan_direct",
    "pgsteal_kswapd", "pgsteal_direct", "pgfault", "pgmajfault", "pgrefill", "pgactivate",
    "pgdeactivate", "pglazyfree", "pglazyfreed", "zswpin", "zswpout", "thp_fault_alloc",
    "thp_collapse_alloc",
]


def pages(n):
    """n bytes rounded down to whole pages."""
    return int(n) // PAGE * PAGE


class FakeCgroup:
    def __init__(self, path, limit, inactive_file=12 * MiB, active_file=4 * MiB):
        self.path = path
        self.inactive_file = pages(inactive_file)
        self.active_file = pages(active_file)
        self.peak = 0
        os.makedirs(path, exist_ok=True)
        self._write("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n")
        self._write("memory.pressure",
                    "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
        self._write("memory.high", "max\n")
        self.set_limit(limit)
        self.set_current(self.inactive_file + self.active_file + 8 * MiB)

    def _write(self, name, text):
        tmp = os.path.join(self.path, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(self.path, name))

    def set_limit(self, limit):
        """memory.max: a byte count, or None for "max"."""
        self._write("memory.max", "max\n" if limit is None else "%d\n" % pages(limit))

    def set_current(self, current):
        """memory.current, with memory.stat and memory.peak to match; the
        working set is current - inactive_file."""
        current = max(pages(current), self.inactive_file + self.active_file + PAGE)
        self.peak = max(self.peak, current)
        file_bytes = self.inactive_file + self.active_file
        anon = current - file_bytes - 2 * MiB  # the rest is kernel memory
        values = dict.fromkeys(STAT_KEYS, 0)
        values.update({
            "anon": anon, "file": file_bytes, "kernel": 2 * MiB, "kernel_stack": 98304,
            "pagetables": 507904, "percpu": 1440, "sock": 0, "vmalloc": 8192,
            "file_mapped": 1720320, "inactive_anon": anon, "active_anon": 0,
            "inactive_file": self.inactive_file, "active_file": self.active_file,
            "slab_reclaimable": 318976, "slab_unreclaimable": 425808, "slab": 744784,
            "pgfault": 41331, "pgmajfault": 17,
        })
        self._write("memory.stat", "".join("%s %d\n" % (k, values[k]) for k in STAT_KEYS))
        self._write("memory.current", "%d\n" % current)
        self._write("memory.peak", "%d\n" % self.peak)
        return current
