package fault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// Storage faults break the files a restore reads: a WAL segment of a server's archive, a file of
// a base backup. Each saves the original beside what it breaks (in a directory of the cluster's
// own, so that reaping a killed run removes it too), puts it back when healed, and removes the
// copy when cleaned up. They work where the provider keeps those files on this machine's
// filesystem (the local provider) and refuse, in Setup, anything else.

// walLongPageHeader is the size of the header that starts every WAL segment
// (XLogLongPageHeaderData): the segment's first record follows it.
const walLongPageHeader = 40

// corruptBytes is how much of a file a corruption overwrites.
const corruptBytes = 512

// stash is where a storage fault keeps the original of what it broke.
type stash struct {
	dir string
}

// newStash makes a stash beside dir (a WAL archive or a base backup), in its parent, which the
// cluster owns: never inside it, where a check of the backup would find an extra file.
func newStash(dir string) (stash, error) {
	dir, err := os.MkdirTemp(filepath.Dir(dir), ".pgdrill-fault-")
	if err != nil {
		return stash{}, fmt.Errorf("make a place for the originals of %s: %w", dir, err)
	}
	return stash{dir: dir}, nil
}

// keep copies path into the stash and returns the copy's path.
func (s stash) keep(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("save the original of %s: %w", path, err)
	}
	saved := filepath.Join(s.dir, filepath.Base(path))
	if err := os.WriteFile(saved, data, 0o600); err != nil {
		return "", fmt.Errorf("save the original of %s: %w", path, err)
	}
	return saved, nil
}

// restore puts the saved copy back at path, with the mode and owner path had (given by info).
func restoreFile(saved, path string, info fs.FileInfo) error {
	data, err := os.ReadFile(saved)
	if err != nil {
		return fmt.Errorf("read the original of %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, info.Mode().Perm()); err != nil {
		return fmt.Errorf("put back %s: %w", path, err)
	}
	return chownLike(path, info)
}

// remove removes the stash; a stash never made is nothing to remove.
func (s stash) remove() error {
	if s.dir == "" {
		return nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove saved originals: %w", err)
	}
	return nil
}

// original is a file a storage fault breaks, with the copy it saved of it: what it puts back,
// and compares with.
type original struct {
	path  string
	info  fs.FileInfo
	saved string
	stash stash
}

// save records path, a file below dir, and saves a copy of it in a stash beside dir.
func (o *original) save(dir, path, what string) error {
	var err error
	o.path = path
	if o.info, err = os.Stat(path); err != nil {
		return fmt.Errorf("find %s: %w", what, err)
	}
	if o.stash, err = newStash(dir); err != nil {
		return err
	}
	o.saved, err = o.stash.keep(path)
	return err
}

// broken says, with an error, that the file still holds its original bytes.
func (o *original) broken(what string) error {
	same, err := sameContents(o.path, o.saved)
	if err == nil && same {
		err = fmt.Errorf("%s holds its original bytes", what)
	}
	return err
}

// putBack writes the original back.
func (o *original) putBack() error { return restoreFile(o.saved, o.path, o.info) }

// intact says, with an error, that the file does not hold its original bytes.
func (o *original) intact(what string) error {
	same, err := sameContents(o.path, o.saved)
	if err == nil && !same {
		err = fmt.Errorf("%s does not hold its original bytes", what)
	}
	return err
}

// sameContents reports whether the files at a and b hold the same bytes.
func sameContents(a, b string) (bool, error) {
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

// corrupt overwrites corruptBytes of path at offset (clamped into the file) with a pattern no
// page or WAL record holds.
func corrupt(path string, offset int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("corrupt %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("corrupt %s: %w", path, err)
	}
	offset = max(0, min(offset, info.Size()-corruptBytes))
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5, 0x5A}, corruptBytes/2), offset); err != nil {
		return fmt.Errorf("corrupt %s: %w", path, err)
	}
	return f.Sync()
}

// localDir returns dir when it is a directory on this machine's filesystem.
func localDir(what, dir string) (string, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%s is %q, not a directory on this machine: storage faults need a provider that keeps it here (local)", what, dir)
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return "", fmt.Errorf("%s %s is not a directory here: storage faults need a provider that keeps it here (local)", what, dir)
	}
	return dir, nil
}

// WALSegment breaks one WAL segment of a server's archive: removes it (Corrupt false) or
// corrupts a stretch of its records. By default it is the first segment archived after the
// backup's end, the first one a replay from that backup needs; Segment names another. Healing
// puts the original back.
type WALSegment struct {
	Server  cluster.Server
	Backup  cluster.Backup
	Corrupt bool
	// Segment names the segment; empty chooses as above.
	Segment string

	original
}

// Describe implements Fault.
func (w *WALSegment) Describe() string {
	what := "remove"
	if w.Corrupt {
		what = "corrupt"
	}
	seg := w.Segment
	if seg == "" {
		seg = "a needed WAL segment"
	} else {
		seg = "WAL segment " + seg
	}
	return what + " " + seg + " of " + w.Server.Name() + "'s archive"
}

// Setup implements Fault: it finds the segment and saves it.
func (w *WALSegment) Setup(ctx context.Context) error {
	if w.Backup.Engine == cluster.EnginePgBackRest {
		return errors.New("the archive is pgBackRest's, whose files are its own to check; break a pg_basebackup chain instead")
	}
	dir, err := localDir("the WAL archive of "+w.Server.Name(), w.Server.Info().WALArchive)
	if err != nil {
		return err
	}
	if w.Segment == "" {
		if w.Segment, err = firstAfterBackup(ctx, w.Server, w.Backup); err != nil {
			return err
		}
	}
	return w.save(dir, filepath.Join(dir, w.Segment), "WAL segment "+w.Segment+" in the archive")
}

// firstAfterBackup names the first segment archived after the one holding the backup's end,
// or that one when the archive has none later yet.
func firstAfterBackup(ctx context.Context, s cluster.Server, b cluster.Backup) (string, error) {
	var end string
	if err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_walfile_name($1::pg_lsn)", b.EndLSN).Scan(&end)
	}); err != nil {
		return "", fmt.Errorf("name the WAL segment of backup %s's end: %w", b.ID, err)
	}
	archived, err := s.ArchivedWAL(ctx)
	if err != nil {
		return "", err
	}
	i, found := slices.BinarySearch(archived, end)
	switch {
	case found && i+1 < len(archived):
		return archived[i+1], nil
	case !found && i < len(archived):
		return archived[i], nil
	case found:
		return end, nil
	}
	return "", fmt.Errorf("the archive of %s holds no segment from backup %s's end (%s) on", s.Name(), b.ID, end)
}

// Inject implements Fault.
func (w *WALSegment) Inject(context.Context) error {
	if w.Corrupt {
		// The segment's first records, right after its long page header: whatever else the
		// segment holds, a replay that enters it reads them (a stretch further in may lie past
		// the segment's switch record, where nothing reads).
		return corrupt(w.path, walLongPageHeader)
	}
	if err := os.Remove(w.path); err != nil {
		return fmt.Errorf("remove WAL segment %s: %w", w.Segment, err)
	}
	return nil
}

// Confirm implements Fault: the segment is absent from the server's archive as the provider
// lists it, or its bytes differ from the original's.
func (w *WALSegment) Confirm(ctx context.Context) error {
	if w.Corrupt {
		return w.broken("WAL segment " + w.Segment)
	}
	archived, err := w.Server.ArchivedWAL(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(archived, w.Segment) {
		return fmt.Errorf("the archive of %s still lists %s", w.Server.Name(), w.Segment)
	}
	return nil
}

// Heal implements Fault: the original goes back.
func (w *WALSegment) Heal(context.Context) error { return w.putBack() }

// ConfirmHealed implements Fault: the archive holds the original bytes.
func (w *WALSegment) ConfirmHealed(context.Context) error {
	return w.intact("WAL segment " + w.Segment)
}

// Cleanup implements Fault.
func (w *WALSegment) Cleanup(context.Context) error { return w.stash.remove() }

// BackupFile breaks one file of a base backup: corrupts a stretch of it, or (Truncate) cuts it
// to half its size. By default it is the backup's largest relation file, where a table's rows
// are; File names another, relative to the backup. Healing puts the original back.
type BackupFile struct {
	Backup   cluster.Backup
	Truncate bool
	// File is the file, relative to the backup's directory; empty chooses as above.
	File string

	original
}

// Describe implements Fault.
func (b *BackupFile) Describe() string {
	what := "corrupt"
	if b.Truncate {
		what = "truncate"
	}
	file := "a file"
	if b.File != "" {
		file = b.File
	}
	return what + " " + file + " of base backup " + b.Backup.ID
}

// Setup implements Fault: it finds the file and saves it.
func (b *BackupFile) Setup(context.Context) error {
	if b.Backup.Engine == cluster.EnginePgBackRest {
		return errors.New("the backup is pgBackRest's, stored in its repository's format; break a pg_basebackup backup instead")
	}
	dir, err := localDir("base backup "+b.Backup.ID, b.Backup.Location)
	if err != nil {
		return err
	}
	if b.File == "" {
		if b.File, err = largestRelation(dir); err != nil {
			return err
		}
	}
	return b.save(dir, filepath.Join(dir, b.File), b.File+" in base backup "+b.Backup.ID)
}

// largestRelation names the largest file under base/ of a backup directory.
func largestRelation(dir string) (string, error) {
	var best string
	var size int64 = -1
	err := filepath.WalkDir(filepath.Join(dir, "base"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
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
	if err != nil {
		return "", fmt.Errorf("look for the largest relation file of %s: %w", dir, err)
	}
	if size <= 0 {
		return "", fmt.Errorf("base backup %s holds no relation file to break", dir)
	}
	return filepath.Rel(dir, best)
}

// Inject implements Fault.
func (b *BackupFile) Inject(context.Context) error {
	if b.Truncate {
		if err := os.Truncate(b.path, b.info.Size()/2); err != nil {
			return fmt.Errorf("truncate %s: %w", b.File, err)
		}
		return nil
	}
	return corrupt(b.path, b.info.Size()/2)
}

// Confirm implements Fault: the file's bytes differ from the original's.
func (b *BackupFile) Confirm(context.Context) error {
	return b.broken(b.File + " of base backup " + b.Backup.ID)
}

// Heal implements Fault: the original goes back.
func (b *BackupFile) Heal(context.Context) error { return b.putBack() }

// ConfirmHealed implements Fault: the file holds the original bytes.
func (b *BackupFile) ConfirmHealed(context.Context) error {
	return b.intact(b.File + " of base backup " + b.Backup.ID)
}

// Cleanup implements Fault.
func (b *BackupFile) Cleanup(context.Context) error { return b.stash.remove() }

// chownLike gives path the owner and group info records, so that a file put back is the
// server's again (pgdrill runs as root, the servers as an account of their own).
func chownLike(path string, info fs.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give %s back to its owner: %w", path, err)
	}
	return nil
}
