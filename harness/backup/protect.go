package backup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// Protection is what the protection phase made of a cluster: one base backup per shard, index i
// for shard i. Restores start from it.
type Protection struct {
	Backups []cluster.Backup `json:"backups"`
	// Elapsed is the wall time of the whole phase.
	Elapsed time.Duration `json:"elapsed"`
}

// Protect takes a base backup of every shard, in parallel.
func Protect(ctx context.Context, c cluster.Cluster, label string) (Protection, error) {
	start := time.Now()
	shards := c.Shards()
	backups := make([]cluster.Backup, len(shards))
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, s := range shards {
		wg.Go(func() { backups[i], errs[i] = s.BaseBackup(ctx, label) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Protection{}, fmt.Errorf("protect cluster %s: %w", c.RunID(), err)
	}
	return Protection{Backups: backups, Elapsed: time.Since(start)}, nil
}

// RestorePoint creates a named restore point on every shard (pg_create_restore_point) and
// returns each shard's LSN of it: a target a restore can recover to by name.
func RestorePoint(ctx context.Context, c cluster.Cluster, name string) ([]LSN, error) {
	shards := c.Shards()
	lsns := make([]LSN, len(shards))
	for i, s := range shards {
		var at string
		err := queryRow(ctx, s.DSN(), "SELECT pg_create_restore_point($1)::text", []any{name}, &at)
		if err != nil {
			return nil, fmt.Errorf("create restore point %q on %s: %w", name, s.Name(), err)
		}
		if lsns[i], err = ParseLSN(at); err != nil {
			return nil, err
		}
	}
	return lsns, nil
}

// queryRow runs one query on a short-lived connection and scans its single row.
func queryRow(ctx context.Context, dsn, sql string, args []any, dest ...any) error {
	return cluster.WithConn(ctx, dsn, func(conn *pgx.Conn) error { return conn.QueryRow(ctx, sql, args...).Scan(dest...) })
}
