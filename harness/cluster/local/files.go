package local

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// Files implements cluster.Cluster: the run's archives and backups are on this machine's
// filesystem, below the run's directory.
func (c *localCluster) Files() cluster.Files { return hostFiles{} }

// hostFiles is cluster.Files on this machine's filesystem. Files it writes get the owner of
// what they copy, so that a file put back is the servers' again (pgdrill may run as root, the
// servers as an account of their own).
type hostFiles struct{}

func (hostFiles) Size(_ context.Context, path string) (int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if !info.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", path)
	}
	return info.Size(), nil
}

func (hostFiles) Largest(_ context.Context, dir string) (string, int64, error) {
	var best string
	var size int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() > size {
			best, size = path, info.Size()
		}
		return nil
	})
	if err != nil || best == "" {
		return "", 0, err
	}
	rel, err := filepath.Rel(dir, best)
	return rel, size, err
}

func (hostFiles) TempDir(_ context.Context, parent string) (string, error) {
	return os.MkdirTemp(parent, ".pgdrill-fault-")
}

func (hostFiles) Copy(_ context.Context, from, to string) error {
	info, err := os.Stat(from)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.WriteFile(to, data, info.Mode().Perm()); err != nil {
		return err
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		return os.Chown(to, int(st.Uid), int(st.Gid))
	}
	return nil
}

func (hostFiles) Same(_ context.Context, a, b string) (bool, error) {
	x, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

func (hostFiles) Overwrite(_ context.Context, path string, offset int64, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(data, offset); err != nil {
		return err
	}
	return f.Sync()
}

func (hostFiles) Truncate(_ context.Context, path string, size int64) error {
	return os.Truncate(path, size)
}

func (hostFiles) Remove(_ context.Context, path string) error { return os.RemoveAll(path) }
