"""cgroupfs -- a directory in the exact formats of a cgroup v2 memory cgroup.

`governord --cgroup DIR` reads DIR exactly as it reads cgroupfs, so a plain
directory can stand in for the cgroup and the test decides the usage the
governor sees.  The files use the kernel's formats (Linux 6.1, Debian 12):

    memory.current   memory.peak     one number and a newline
    memory.max       memory.high     a number, or "max" for no limit
    memory.stat      the full 6.1 key list in the kernel's order, consistent
                     with memory.current (anon + file + kernel)
    memory.events    all six keys
    memory.pressure  PSI format ("some ..." and "full ..." lines)
    cgroup.controllers

How files change matters, because governord keeps them open:

- write() and set() replace a file by rename (a temporary file in the same
  directory, then rename(2)): a reader never sees half a file, and governord
  must notice the new inode and reopen it;
- set_events() rewrites memory.events in place by default (same inode,
  truncate and one write), the way the kernel changes it, which is what
  governord's watch (POLLPRI on cgroupfs, inotify IN_MODIFY on a directory)
  reacts to; replace=True swaps in a new file by rename instead.
"""
import os

MIB = 1 << 20
GIB = 1 << 30

# memory.stat of Linux 6.1 (Debian 12), in the kernel's order
V2_STAT_KEYS = [
    "anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu",
    "sock", "vmalloc", "shmem", "zswap", "zswapped", "file_mapped", "file_dirty",
    "file_writeback", "swapcached", "anon_thp", "file_thp", "shmem_thp", "inactive_anon",
    "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
    "slab_unreclaimable", "slab", "workingset_refault_anon", "workingset_refault_file",
    "workingset_activate_anon", "workingset_activate_file", "workingset_restore_anon",
    "workingset_restore_file", "workingset_nodereclaim", "pgscan", "pgsteal",
    "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pgfault",
    "pgmajfault", "pgrefill", "pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed",
    "zswpin", "zswpout", "thp_fault_alloc", "thp_collapse_alloc",
]

# the kernel's own memory in memory.stat (a small pod's figures, in bytes);
# "kernel" is their sum and more, as on a real 6.1 cgroup
KERNEL_BYTES = 2 * MIB
KERNEL_STAT = {
    "kernel": KERNEL_BYTES, "kernel_stack": 98304, "pagetables": 507904, "percpu": 1440,
    "vmalloc": 8192, "slab_reclaimable": 318976, "slab_unreclaimable": 425808,
    "slab": 744784,
}

EVENT_KEYS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")


class CgroupDir:
    """A cgroup v2 memory cgroup as a directory the test writes.

    The working set governord computes is current - inactive_file; both stay
    as set until changed (set(current=...) keeps the last inactive_file)."""

    def __init__(self, path, current=100 * MIB, max_=GIB, high="max",
                 inactive_file=4 * MIB, active_file=2 * MIB):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)
        self.active_file = active_file
        self.inactive_file = inactive_file
        self.current = current
        self.peak = current
        self.events = dict.fromkeys(EVENT_KEYS, 0)
        self.write("cgroup.controllers", "cpuset cpu io memory pids\n")
        self.write("memory.events", self._events())
        self.write("memory.pressure",
                   "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
        self.set(current=current, max_=max_, high=high)

    def file(self, name):
        return os.path.join(self.path, name)

    def write(self, name, content):
        """Replaces a file by rename: readers never see half a file."""
        tmp = self.file("." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(content)
        os.rename(tmp, self.file(name))

    def remove(self, name):
        os.unlink(self.file(name))

    def set(self, current=None, max_=None, high=None, inactive_file=None):
        """memory.max and memory.high (a byte count or "max"); memory.current
        with memory.stat and memory.peak to match.  Files are replaced in the
        order max, high, stat, current, peak."""
        if max_ is not None:
            self.write("memory.max", f"{max_}\n")
        if high is not None:
            self.write("memory.high", f"{high}\n")
        if inactive_file is not None:
            self.inactive_file = inactive_file
        if current is not None:
            self.current = current
        if current is not None or inactive_file is not None:
            self.peak = max(self.peak, self.current)
            self.write("memory.stat", self._stat())
            self.write("memory.current", f"{self.current}\n")
            self.write("memory.peak", f"{self.peak}\n")

    def set_events(self, replace=False, **counts):
        """memory.events with the given counters (keys as in the file).

        In place by default, as the kernel changes it: the same inode,
        truncated and rewritten with one write.  replace=True writes a new
        file and renames it over the old one (governord must reopen it)."""
        for key in counts:
            if key not in self.events:
                raise KeyError(f"memory.events has no key {key!r}")
        self.events.update(counts)
        if replace:
            self.write("memory.events", self._events())
            return
        fd = os.open(self.file("memory.events"), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, self._events().encode())
        finally:
            os.close(fd)

    def set_pressure(self, some_total_us, full_total_us):
        """memory.pressure with the given stall totals (microseconds)."""
        self.write("memory.pressure",
                   f"some avg10=1.50 avg60=0.40 avg300=0.10 total={some_total_us}\n"
                   f"full avg10=0.50 avg60=0.10 avg300=0.02 total={full_total_us}\n")

    def _events(self):
        return "".join(f"{k} {v}\n" for k, v in self.events.items())

    def _stat(self):
        file_bytes = self.inactive_file + self.active_file
        anon = max(self.current - file_bytes - KERNEL_BYTES, 0)
        values = dict.fromkeys(V2_STAT_KEYS, 0)
        values.update(KERNEL_STAT)
        values.update(anon=anon, file=file_bytes, inactive_anon=anon,
                      inactive_file=self.inactive_file, active_file=self.active_file,
                      file_mapped=1720320, pgfault=41331, pgmajfault=17)
        return "".join(f"{k} {values[k]}\n" for k in V2_STAT_KEYS)
