"""kubelet -- a ConfigMap volume written the way the kubelet writes it.

The kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go) lays out a
ConfigMap volume as

    ..2026_11_26_10_00_00.123456789/policy.ini   the data, in a timestamped dir
    ..data -> ..2026_11_26_10_00_00.123456789    the current data
    policy.ini -> ..data/policy.ini              what the container opens

and updates it in this order: a new timestamped directory (mode 0755) with
the files (mode defaultMode), a symlink ..data_tmp pointing at it, the
rename of ..data_tmp over ..data (the one atomic step), the user-visible
symlinks of new keys, the removal of the links of keys that went away, and
the removal of the old timestamped directory.  governord watches the volume
directory and must follow that swap, so the tests write it exactly so.
"""
import os
import shutil
import tempfile
import time


class ConfigMapDir:
    """A ConfigMap volume at path, first written with files (key -> text)."""

    def __init__(self, path, files, default_mode=0o644):
        self.path = str(path)
        self.mode = default_mode
        os.makedirs(self.path, exist_ok=True)
        os.chmod(self.path, 0o755)  # readable by a container's non-root user
        self.keys = set()
        self.update(files)

    def file(self, key):
        """The path the container opens for key."""
        return os.path.join(self.path, key)

    def update(self, files):
        """Writes files (key -> text) as the volume's new version."""
        data = os.path.join(self.path, "..data")
        old = os.readlink(data) if os.path.islink(data) else None
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        ts_dir = tempfile.mkdtemp(prefix=stamp, dir=self.path)
        os.chmod(ts_dir, 0o755)
        for key, text in files.items():
            with open(os.path.join(ts_dir, key), "w") as f:
                f.write(text)
            os.chmod(os.path.join(ts_dir, key), self.mode)
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(os.path.basename(ts_dir), tmp)
        os.rename(tmp, data)  # the atomic swap
        for key in files:
            if not os.path.lexists(self.file(key)):
                os.symlink(os.path.join("..data", key), self.file(key))
        for key in self.keys - set(files):
            os.unlink(self.file(key))
        self.keys = set(files)
        if old:
            shutil.rmtree(os.path.join(self.path, old))
