package container

import (
	"context"
	"fmt"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// PrepareSidecar copies a backup into a new data directory of the volume, points its
// restore_command at the backed-up server's archive, writes recovery.signal and makes its
// container; Start then recovers it. If the archive runs out before the target (a missing
// segment, say), Postgres stops with "recovery ended before configured recovery target was
// reached", and Start's error quotes that log.
func (c *containers) PrepareSidecar(ctx context.Context, spec cluster.SidecarSpec) (cluster.Server, error) {
	origin := c.find(spec.From.Server)
	if origin == nil || origin.archive == "" {
		return nil, fmt.Errorf("prepare sidecar: backup %s is of server %q, which has no WAL archive in run %s",
			spec.From.ID, spec.From.Server, c.runID)
	}
	recovery, err := cluster.SidecarSettings(spec.Target)
	if err != nil {
		return nil, fmt.Errorf("prepare sidecar: %w", err)
	}
	s := c.newServer("sidecar-"+origin.name+"-"+c.next(), cluster.RoleSidecar, origin.index, false)
	recovery["restore_command"] = origin.restoreCommand(s)
	s.upstream, s.recovery = origin, recovery
	c.mu.Lock()
	c.sidecars = append(c.sidecars, s)
	c.mu.Unlock()
	if spec.From.Engine == cluster.EnginePgBackRest {
		if err := c.restorePgBackRest(ctx, origin, s, spec); err != nil {
			return s, err
		}
	} else {
		layout := `cp -a "$1" "$2" && rm -f "$2"/backup_manifest && touch "$2"/recovery.signal && chmod 700 "$2"`
		if err := c.tool(ctx, asPostgres, nil, layout, spec.From.Location, s.dataDir()); err != nil {
			return s, fmt.Errorf("prepare sidecar %s: copy backup %s: %w", s.name, spec.From.ID, err)
		}
	}
	if err := s.create(ctx); err != nil {
		return s, fmt.Errorf("prepare sidecar %s: %w", s.name, err)
	}
	return s, c.saveRecord()
}

// ReplaceData implements cluster.Cluster by swapping data directories within the volume: a
// rename, so rolling a shard back costs a restart, not a copy. The sidecar's timeline history
// files go into the server's archive first, so that the archive still leads from the server's
// older base backups across the new timeline. The server's container is made anew (a lost
// server has none), at the same name and port.
func (c *containers) ReplaceData(ctx context.Context, target, sidecar cluster.Server) error {
	dst, src := c.find(target.Name()), c.find(sidecar.Name())
	if dst == nil || src == nil || src.role != cluster.RoleSidecar || src.upstream != dst {
		return fmt.Errorf("replace data of %s: %s is not a sidecar restored from it in run %s",
			target.Name(), sidecar.Name(), c.runID)
	}
	if err := src.removeContainer(ctx); err != nil { // a promoted sidecar needs no clean shutdown
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	if dst.running() {
		if err := dst.Stop(ctx); err != nil {
			return fmt.Errorf("replace data of %s: %w", dst.name, err)
		}
	}
	// $3 archives a history file: copies it into a plain archive, or pushes it into a stanza.
	push := fmt.Sprintf(`[ -e "%s/${h##*/}" ] || cp "$h" "%[1]s/"`, dst.archive)
	if dst.pgBackRest() {
		push = dst.pgBackRestCommand("archive-push", `"$h"`)
	}
	swap := `[ -z "$3" ] || for h in "$1"/pg_wal/*.history; do [ -e "$h" ] || continue; ` + push + ` || exit 1; done
rm -rf "$2.replaced" && { [ ! -e "$2" ] || mv "$2" "$2.replaced"; } && mv "$1" "$2" && rm -rf "$2.replaced"`
	if err := c.tool(ctx, asPostgres, nil, swap, src.dataDir(), dst.dataDir(), dst.archive); err != nil {
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	c.mu.Lock()
	for i, s := range c.sidecars {
		if s == src {
			c.sidecars = append(c.sidecars[:i], c.sidecars[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	if err := dst.create(ctx); err != nil {
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	if err := dst.Start(ctx); err != nil {
		return fmt.Errorf("replace data of %s: %w", dst.name, err)
	}
	return c.saveRecord()
}
