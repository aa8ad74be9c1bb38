package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/logtail"
)

// templateFormat changes whenever what a template holds changes, so old caches are not reused.
const templateFormat = "2"

// initdbArgs are the options every template is made with: trust auth (loopback and a private
// socket only), a fixed superuser, and C collation so that ordering does not depend on the host.
var initdbArgs = []string{"--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C",
	"--no-sync", "--no-instructions"}

// ensureTemplate returns a data directory made by initdb (with the pgdrill database already in
// it), creating it once per binaries version. Servers are cloned from it with cp, which is ~7×
// faster than initdb. Templates stay cached between runs under WorkRoot/templates.
func (p *Provider) ensureTemplate(ctx context.Context) (string, error) {
	p.templateMu.Lock()
	defer p.templateMu.Unlock()
	sum := sha256.Sum256([]byte(templateFormat + "\x00" + p.bins.Dir + "\x00" + p.bins.Version + "\x00" +
		strings.Join(initdbArgs, " ")))
	dir := filepath.Join(p.workRoot, "templates", "pg"+p.bins.Major+"-"+hex.EncodeToString(sum[:6]))
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return data, nil
	}
	if err := p.user.mkdir(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("create template dir: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".building-")
	if err != nil {
		return "", fmt.Errorf("create template dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := p.user.mkdir(tmp, 0o700); err != nil {
		return "", err
	}
	tmpData := filepath.Join(tmp, "data")
	args := append([]string{"-D", tmpData}, initdbArgs...)
	if out, err := p.user.command(exec.CommandContext(ctx, p.bins.Path("initdb"), args...)).CombinedOutput(); err != nil {
		return "", fmt.Errorf("run initdb: %w: %s", err, logtail.Last(string(out), 20))
	}
	// Every server's own settings go in pgdrill.conf, rewritten on each start.
	f, err := os.OpenFile(filepath.Join(tmpData, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", fmt.Errorf("open template postgresql.conf: %w", err)
	}
	_, err = f.WriteString("\n# pgdrill: per-server settings\ninclude_if_exists = 'pgdrill.conf'\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write template postgresql.conf: %w", err)
	}
	// Single-user mode needs no port or socket: create the working database once, here.
	single := p.user.command(exec.CommandContext(ctx, p.bins.Path("postgres"), "--single", "-D", tmpData,
		"-c", "fsync=off", "postgres"))
	single.Stdin = strings.NewReader("CREATE DATABASE " + cluster.DefaultDatabase + ";\n")
	if out, err := single.CombinedOutput(); err != nil {
		return "", fmt.Errorf("create database %s in template: %w: %s", cluster.DefaultDatabase, err, logtail.Last(string(out), 20))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(data, "PG_VERSION")); statErr == nil {
			return data, nil // another pgdrill built it meanwhile
		}
		return "", fmt.Errorf("install template: %w", err)
	}
	return data, nil
}

// copyChunk is how much of a file one copy call moves: big enough that the calls cost nothing
// beside the bytes, small enough that a 1 GB segment file is shared between workers.
const copyChunk = 64 << 20

// copyTree copies a data directory with its owners and modes, as cp -a does, into dst, which
// must not exist or be an empty directory (a filesystem of its own). Its files are copied in
// chunks by one worker per core, each chunk inside the kernel (copy_file_range, which reflinks
// where the filesystem can): restoring a sidecar starts with copying a whole base backup, and one
// cp process copies it no faster than one core can, as pgBackRest's --process-max knows.
func copyTree(ctx context.Context, src, dst string) error {
	if entries, err := os.ReadDir(dst); err == nil && len(entries) > 0 || err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("copy %s: destination %s exists", src, dst)
	}
	var chunks []fileChunk
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, 0o700); err != nil && !(rel == "." && errors.Is(err, os.ErrExist)) {
				return err
			}
			if err := os.Chmod(to, info.Mode().Perm()); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case d.Type().IsRegular():
			f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
			if err != nil {
				return err
			}
			err = errors.Join(f.Truncate(info.Size()), f.Chmod(info.Mode().Perm()), f.Close())
			if err != nil {
				return err
			}
			for off := int64(0); off < info.Size(); off += copyChunk {
				chunks = append(chunks, fileChunk{from: path, to: to, off: off, n: min(copyChunk, info.Size()-off)})
			}
		default:
			return fmt.Errorf("%s is neither a file, a directory nor a symbolic link", path)
		}
		return sameOwner(to, info)
	})
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	work := make(chan fileChunk)
	var wg sync.WaitGroup
	errs := make([]error, runtime.NumCPU())
	for w := range errs {
		wg.Go(func() {
			for c := range work {
				if errs[w] == nil {
					errs[w] = c.copy()
				}
			}
		})
	}
	for _, c := range chunks {
		if ctx.Err() != nil {
			break
		}
		work <- c
	}
	close(work)
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// sameOwner gives the copy at path the owner of the original, when pgdrill runs as root (the
// servers then run as another account); otherwise both are pgdrill's own.
func sameOwner(path string, original fs.FileInfo) error {
	st, ok := original.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}

// fileChunk is n bytes at off of file from, to be copied to the same place of file to.
type fileChunk struct {
	from, to string
	off, n   int64
}

// copy copies the chunk inside the kernel, or through a buffer where the filesystems cannot.
func (c fileChunk) copy() error {
	in, err := os.Open(c.from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(c.to, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	inOff, outOff, left := c.off, c.off, c.n
	for left > 0 {
		n, err := unix.CopyFileRange(int(in.Fd()), &inOff, int(out.Fd()), &outOff, int(left), 0)
		switch {
		case err == nil && n == 0:
			err = fmt.Errorf("it ends %d bytes before its size", left)
		case err == nil:
			left -= int64(n)
			continue
		case errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL):
			var copied int64
			copied, err = io.Copy(io.NewOffsetWriter(out, outOff), io.NewSectionReader(in, inOff, left))
			if left -= copied; err == nil && left > 0 {
				err = fmt.Errorf("it ends %d bytes before its size", left)
			}
		}
		if err != nil {
			_ = out.Close()
			return fmt.Errorf("copy %s: %w", c.from, err)
		}
	}
	return out.Close()
}
