"""kubelet -- a ConfigMap volume written the way the kubelet writes it.

The kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go) lays out a
ConfigMap volume as

    ..2026_11_26_10_00_00.123456789/policy.ini   the data, in a timestamped dir
    ..data -> ..2026_11_26_10_00_00.123456789    the current data
    policy.ini -> ..data/policy.ini              what the container opens

and updates it by writing a new timestamped directory, pointing a new
symlink ..data_tmp at it, renaming ..data_tmp over ..data (the one atomic
step), then removing the old directory.  governord must follow that swap
(it watches the directory), so the chart-in-the-loop test writes the volume
exactly like this, with the file mode of the volume's defaultMode.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path


class ConfigMapVolume:
    def __init__(self, root, default_mode=0o644):
        self.root = Path(root)
        self.mode = default_mode
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)   # readable by the container's non-root user

    def _current(self):
        try:
            return os.readlink(self.root / "..data")
        except FileNotFoundError:
            return None

    def write(self, data):
        """Writes data (key -> text) as a new version of the volume."""
        old = self._current()
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
        ts_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=self.root))
        for key, text in data.items():
            f = ts_dir / key
            f.write_text(text)
            os.chmod(f, self.mode)
        os.chmod(ts_dir, 0o755)
        tmp = self.root / "..data_tmp"
        os.symlink(ts_dir.name, tmp)
        # the user-visible symlinks exist before the swap (they go through ..data)
        for key in data:
            link = self.root / key
            if not os.path.lexists(link):
                os.symlink(f"..data/{key}", link)
        os.rename(tmp, self.root / "..data")
        if old:
            for entry in os.listdir(self.root / old):
                if entry not in data:
                    (self.root / entry).unlink(missing_ok=True)
            shutil.rmtree(self.root / old)
