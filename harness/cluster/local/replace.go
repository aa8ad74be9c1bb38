package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// ReplaceData implements cluster.Cluster by swapping data directories: a rename on the same
// filesystem, so rolling a shard back costs a restart, not a copy of its data. The sidecar's
// timeline history files go into the server's archive first, so that the archive still leads
// from the server's older base backups across the new timeline.
func (c *localCluster) ReplaceData(ctx context.Context, target, sidecar cluster.Server) error {
	dst, src := c.find(target.Name()), c.find(sidecar.Name())
	if dst != nil {
		if err := dst.mayControl(); err != nil {
			return fmt.Errorf("replace data of %s: %w", target.Name(), err)
		}
	}
	if dst == nil || src == nil || src.role != cluster.RoleSidecar || src.upstream != dst {
		return fmt.Errorf("replace data of %s: %s is not a sidecar restored from it in run %s",
			target.Name(), sidecar.Name(), c.runID)
	}
	if err := src.Stop(ctx); err != nil {
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	if dst.archive != "" {
		if err := c.archiveHistory(ctx, src, dst); err != nil {
			return fmt.Errorf("replace data of %s: %w", dst.name, err)
		}
	}
	if err := dst.Stop(ctx); err != nil {
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	old := dst.dataDir() + ".replaced"
	lost := false // a lost server (Lose) has no data to move aside
	if err := os.Rename(dst.dataDir(), old); errors.Is(err, os.ErrNotExist) {
		lost = true
	} else if err != nil {
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	if err := os.Rename(src.dataDir(), dst.dataDir()); err != nil {
		if !lost {
			if rerr := os.Rename(old, dst.dataDir()); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("replace data of %s: remove the old data: %w", dst.name, err)
	}
	if err := dst.Start(ctx); err != nil {
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	return nil
}

// archiveHistory puts the timeline history files of s's pg_wal that dst's archive lacks into it
// (a sidecar promotes with archiving off, so its archiver never sent them): copied into a plain
// archive, pushed into a pgBackRest stanza.
func (c *localCluster) archiveHistory(ctx context.Context, s, dst *server) error {
	wal := filepath.Join(s.dataDir(), "pg_wal")
	entries, err := os.ReadDir(wal)
	if err != nil {
		return fmt.Errorf("list WAL of %s: %w", s.name, err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".history") {
			continue
		}
		if dst.pgBackRest() {
			if _, err := c.runPgBackRest(ctx, dst, "archive-push", filepath.Join(wal, e.Name())); err != nil {
				return err
			}
			continue
		}
		to := filepath.Join(dst.archive, e.Name())
		if _, err := os.Stat(to); err == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(wal, e.Name()))
		if err != nil {
			return fmt.Errorf("read %s of %s: %w", e.Name(), s.name, err)
		}
		if err := os.WriteFile(to, data, 0o600); err != nil {
			return fmt.Errorf("archive %s: %w", e.Name(), err)
		}
		if err := c.p.user.own(to); err != nil {
			return err
		}
	}
	return nil
}
