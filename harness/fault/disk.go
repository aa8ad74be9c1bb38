package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// diskProbe is the size of the write DiskFull's confirmation tries: it must fail.
const diskProbe = 1 << 20

// diskHealed is the room a healed disk has at least: a WAL segment.
const diskHealed = 16 << 20

// DiskFull fills a sidecar's disk: its data directory's filesystem, one of its own
// (cluster.Spec.SidecarDisks), is shrunk to what the sidecar uses, so that its next write —
// a WAL segment fetched from the archive, a page of a replayed table — fails with "No space left
// on device", as a restore onto a too small volume does. Healing gives the filesystem its size
// back; the restore must notice the sidecar died, and start it again once there is room.
type DiskFull struct {
	Server cluster.Server
	disk   cluster.Disk
	size   int64
	// probe is the file Confirm writes to see the disk full; removed at once, and by Cleanup.
	probe string
}

// Describe implements Fault.
func (d *DiskFull) Describe() string { return "fill the disk of " + d.Server.Name() }

// Setup implements Fault: the server must have a disk of its own, whose size it keeps.
func (d *DiskFull) Setup(context.Context) error {
	disk, ok := d.Server.(cluster.Disk)
	if !ok {
		return fmt.Errorf("fill the disk of %s: its provider gives servers no disk of their own", d.Server.Name())
	}
	_, size, _, err := disk.DiskUsage()
	if err != nil {
		return fmt.Errorf("fill the disk of %s: %w", d.Server.Name(), err)
	}
	d.disk, d.size = disk, size
	d.probe = filepath.Join(d.Server.Info().DataDir, ".pgdrill-fault-disk-probe")
	return nil
}

// Inject implements Fault: the filesystem shrinks to what is used.
func (d *DiskFull) Inject(ctx context.Context) error { return d.disk.ResizeDisk(ctx, 0) }

// Confirm implements Fault: a write of a megabyte onto the disk fails for want of space.
func (d *DiskFull) Confirm(context.Context) error {
	f, err := os.OpenFile(d.probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, syscall.ENOSPC) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write onto the disk of %s: %w", d.Server.Name(), err)
	}
	_, werr := f.Write(make([]byte, diskProbe))
	if werr == nil {
		werr = f.Sync()
	}
	f.Close()
	if err := os.Remove(d.probe); err != nil {
		return fmt.Errorf("remove the probe of the disk of %s: %w", d.Server.Name(), err)
	}
	if !errors.Is(werr, syscall.ENOSPC) {
		return fmt.Errorf("the disk of %s still takes a %d-byte write (%v)", d.Server.Name(), diskProbe, werr)
	}
	return nil
}

// Heal implements Fault: the filesystem gets its size back.
func (d *DiskFull) Heal(ctx context.Context) error { return d.disk.ResizeDisk(ctx, d.size) }

// ConfirmHealed implements Fault: the disk has room for a WAL segment again.
func (d *DiskFull) ConfirmHealed(context.Context) error {
	_, _, avail, err := d.disk.DiskUsage()
	if err != nil {
		return err
	}
	if avail < diskHealed {
		return fmt.Errorf("the disk of %s has %d bytes free, less than a WAL segment", d.Server.Name(), avail)
	}
	return nil
}

// Cleanup implements Fault: no probe is left; the disk itself goes with the sidecar.
func (d *DiskFull) Cleanup(context.Context) error {
	if d.probe == "" {
		return nil
	}
	if err := os.Remove(d.probe); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the probe of the disk of %s: %w", d.Server.Name(), err)
	}
	return nil
}
