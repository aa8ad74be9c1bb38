package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

var _ cluster.Disk = (*server)(nil)

// errNoRootForDisks refuses Spec.SidecarDisks where pgdrill cannot mount.
var errNoRootForDisks = fmt.Errorf("sidecar disks of their own are tmpfs mounts, which need root, and pgdrill runs as uid %d: "+
	"a disk-full fault cannot run here (run pgdrill as root, or remove the fault)", os.Geteuid())

// mountDisk gives the server's data directory a filesystem of its own: a tmpfs, owned by the run
// user, as large as tmpfs's default (half the memory) until a fault resizes it. Only what is
// written to it takes memory.
func (s *server) mountDisk() error {
	if os.Geteuid() != 0 {
		return errNoRootForDisks
	}
	dir := s.dataDir()
	u := s.c.p.user
	if err := u.mkdir(dir, 0o700); err != nil {
		return err
	}
	opts := "mode=0700"
	if u.Switch {
		opts += fmt.Sprintf(",uid=%d,gid=%d", u.UID, u.GID)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount a disk of its own for %s at %s: %w", s.name, dir, err)
	}
	s.mu.Lock()
	s.disk = true
	s.mu.Unlock()
	return nil
}

// ownDisk reports whether the server's data directory is a filesystem of its own.
func (s *server) ownDisk() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.disk {
		return fmt.Errorf("%s has no disk of its own (cluster.Spec.SidecarDisks): its data directory shares the work root's filesystem", s.name)
	}
	return nil
}

// DiskUsage implements cluster.Disk.
func (s *server) DiskUsage() (used, size, avail int64, err error) {
	if err := s.ownDisk(); err != nil {
		return 0, 0, 0, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.dataDir(), &st); err != nil {
		return 0, 0, 0, fmt.Errorf("read the disk of %s: %w", s.name, err)
	}
	bs := st.Bsize
	return int64(st.Blocks-st.Bfree) * bs, int64(st.Blocks) * bs, int64(st.Bavail) * bs, nil
}

// resizeAttempts bounds ResizeDisk's retries: the server writes while the size is chosen.
const resizeAttempts = 20

// ResizeDisk implements cluster.Disk: a tmpfs remounted with its new size. A size below what the
// server uses by the time of the remount is raised to it (the kernel refuses less).
func (s *server) ResizeDisk(ctx context.Context, size int64) error {
	if err := s.ownDisk(); err != nil {
		return err
	}
	var err error
	for range resizeAttempts {
		want := size
		if used, _, _, uerr := s.DiskUsage(); uerr == nil {
			want = max(size, used)
		}
		pages := (want + int64(os.Getpagesize()) - 1) / int64(os.Getpagesize())
		err = unix.Mount("tmpfs", s.dataDir(), "tmpfs", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("nr_blocks=%d", pages))
		if !errors.Is(err, unix.EINVAL) {
			break
		}
		select { // it wrote meanwhile: measure again
		case <-ctx.Done():
			return fmt.Errorf("resize the disk of %s: %w", s.name, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("resize the disk of %s to %d bytes: %w", s.name, size, err)
	}
	return nil
}

// unmountUnder unmounts every filesystem mounted at or below dir, deepest first: the sidecars'
// own disks, before their run directory is removed. A lazy unmount, so that a process still
// holding a file there cannot keep the mount.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("list mounts under %s: %w", dir, err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMount(fields[4])
		if p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("list mounts under %s: %w", dir, err)
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes of spaces, tabs, newlines and backslashes.
func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}
