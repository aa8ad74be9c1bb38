package fault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// Storage faults break the files a restore reads: a WAL segment of a server's archive, a file of
// a base backup. Each saves the original beside what it breaks (in a directory of the cluster's
// own, so that reaping a killed run removes it too), puts it back when healed, and removes the
// copy when cleaned up. They reach the files through the provider (cluster.Files), wherever it
// keeps them: on this machine, or in a volume only its containers see.

// walLongPageHeader is the size of the header that starts every WAL segment
// (XLogLongPageHeaderData): the segment's first record follows it.
const walLongPageHeader = 40

// corruptBytes is how much of a file a corruption overwrites.
const corruptBytes = 512

// original is a file a storage fault breaks, with the copy it saved of it: what it puts back,
// and compares with.
type original struct {
	files cluster.Files
	path  string
	size  int64
	stash string // the directory the copy is in
	saved string
}

// save records path, a file below dir, and saves a copy of it in a directory of its own beside
// dir (in its parent, which the cluster owns: never inside it, where a check of the backup would
// find an extra file).
func (o *original) save(ctx context.Context, files cluster.Files, dir, file, what string) error {
	if files == nil {
		return fmt.Errorf("find %s: the provider gave no access to its files", what)
	}
	var err error
	o.files, o.path = files, file
	if o.size, err = files.Size(ctx, file); err != nil {
		return fmt.Errorf("find %s: %w", what, err)
	}
	if o.stash, err = files.TempDir(ctx, path.Dir(dir)); err != nil {
		return fmt.Errorf("make a place for the original of %s: %w", what, err)
	}
	o.saved = o.stash + "/" + path.Base(file)
	if err := files.Copy(ctx, file, o.saved); err != nil {
		return fmt.Errorf("save the original of %s: %w", what, err)
	}
	return nil
}

// broken says, with an error, that the file still holds its original bytes.
func (o *original) broken(ctx context.Context, what string) error {
	same, err := o.files.Same(ctx, o.path, o.saved)
	if err == nil && same {
		err = fmt.Errorf("%s holds its original bytes", what)
	}
	return err
}

// putBack writes the original back, with its mode and owner.
func (o *original) putBack(ctx context.Context) error {
	if err := o.files.Copy(ctx, o.saved, o.path); err != nil {
		return fmt.Errorf("put back %s: %w", o.path, err)
	}
	return nil
}

// intact says, with an error, that the file does not hold its original bytes.
func (o *original) intact(ctx context.Context, what string) error {
	same, err := o.files.Same(ctx, o.path, o.saved)
	if err == nil && !same {
		err = fmt.Errorf("%s does not hold its original bytes", what)
	}
	return err
}

// removeStash removes the saved copy; a copy never made is nothing to remove.
func (o *original) removeStash(ctx context.Context) error {
	if o.stash == "" {
		return nil
	}
	if err := o.files.Remove(ctx, o.stash); err != nil {
		return fmt.Errorf("remove saved originals: %w", err)
	}
	return nil
}

// corrupt overwrites corruptBytes of the file at offset (clamped into the file) with a pattern no
// page or WAL record holds.
func (o *original) corrupt(ctx context.Context, offset int64) error {
	offset = max(0, min(offset, o.size-corruptBytes))
	if err := o.files.Overwrite(ctx, o.path, offset, bytes.Repeat([]byte{0xA5, 0x5A}, corruptBytes/2)); err != nil {
		return fmt.Errorf("corrupt %s: %w", o.path, err)
	}
	return nil
}

// WALSegment breaks one WAL segment of a server's archive: removes it (Corrupt false) or
// corrupts a stretch of its records. By default it is the first segment archived after the
// backup's end, the first one a replay from that backup needs; Segment names another. Healing
// puts the original back.
type WALSegment struct {
	// Files reaches the archive (the cluster's Files).
	Files   cluster.Files
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
	dir := w.Server.Info().WALArchive
	if dir == "" {
		return fmt.Errorf("%s has no WAL archive", w.Server.Name())
	}
	if w.Segment == "" {
		var err error
		if w.Segment, err = firstAfterBackup(ctx, w.Server, w.Backup); err != nil {
			return err
		}
	}
	return w.save(ctx, w.Files, dir, dir+"/"+w.Segment, "WAL segment "+w.Segment+" in the archive")
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
func (w *WALSegment) Inject(ctx context.Context) error {
	if w.Corrupt {
		// The segment's first records, right after its long page header: whatever else the
		// segment holds, a replay that enters it reads them (a stretch further in may lie past
		// the segment's switch record, where nothing reads).
		return w.corrupt(ctx, walLongPageHeader)
	}
	if err := w.files.Remove(ctx, w.path); err != nil {
		return fmt.Errorf("remove WAL segment %s: %w", w.Segment, err)
	}
	return nil
}

// Confirm implements Fault: the segment is absent from the server's archive as the provider
// lists it, or its bytes differ from the original's.
func (w *WALSegment) Confirm(ctx context.Context) error {
	if w.Corrupt {
		return w.broken(ctx, "WAL segment "+w.Segment)
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
func (w *WALSegment) Heal(ctx context.Context) error { return w.putBack(ctx) }

// ConfirmHealed implements Fault: the archive holds the original bytes.
func (w *WALSegment) ConfirmHealed(ctx context.Context) error {
	return w.intact(ctx, "WAL segment "+w.Segment)
}

// Cleanup implements Fault.
func (w *WALSegment) Cleanup(ctx context.Context) error { return w.removeStash(ctx) }

// BackupFile breaks one file of a base backup: corrupts a stretch of it, or (Truncate) cuts it
// to half its size. By default it is the backup's largest relation file, where a table's rows
// are; File names another, relative to the backup. Healing puts the original back.
type BackupFile struct {
	// Files reaches the backup (the cluster's Files).
	Files    cluster.Files
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
func (b *BackupFile) Setup(ctx context.Context) error {
	if b.Backup.Engine == cluster.EnginePgBackRest {
		return errors.New("the backup is pgBackRest's, stored in its repository's format; break a pg_basebackup backup instead")
	}
	dir := b.Backup.Location
	if b.File == "" {
		if b.Files == nil {
			return errors.New("the provider gave no access to its files")
		}
		file, size, err := b.Files.Largest(ctx, dir+"/base")
		if err != nil {
			return fmt.Errorf("look for the largest relation file of base backup %s: %w", b.Backup.ID, err)
		}
		if size <= 0 {
			return fmt.Errorf("base backup %s holds no relation file to break", b.Backup.ID)
		}
		b.File = "base/" + file
	}
	return b.save(ctx, b.Files, dir, dir+"/"+b.File, b.File+" in base backup "+b.Backup.ID)
}

// Inject implements Fault.
func (b *BackupFile) Inject(ctx context.Context) error {
	if b.Truncate {
		if err := b.files.Truncate(ctx, b.path, b.size/2); err != nil {
			return fmt.Errorf("truncate %s: %w", b.File, err)
		}
		return nil
	}
	return b.corrupt(ctx, b.size/2)
}

// Confirm implements Fault: the file's bytes differ from the original's.
func (b *BackupFile) Confirm(ctx context.Context) error {
	return b.broken(ctx, b.File+" of base backup "+b.Backup.ID)
}

// Heal implements Fault: the original goes back.
func (b *BackupFile) Heal(ctx context.Context) error { return b.putBack(ctx) }

// ConfirmHealed implements Fault: the file holds the original bytes.
func (b *BackupFile) ConfirmHealed(ctx context.Context) error {
	return b.intact(ctx, b.File+" of base backup "+b.Backup.ID)
}

// Cleanup implements Fault.
func (b *BackupFile) Cleanup(ctx context.Context) error { return b.removeStash(ctx) }
