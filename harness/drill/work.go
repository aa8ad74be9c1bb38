package drill

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
)

// ShardWork is how much work a restore of one shard had to do: what the phases' times are
// measured against when pgdrill measure fits its cost curves.
type ShardWork struct {
	Shard int `json:"shard"`
	// DataBytes is the size of the shard's databases when its base backup was taken: what a
	// sidecar's provision lays out.
	DataBytes int64 `json:"data_bytes"`
	// WALBytes is the WAL from the base backup's start to the shard's first harm: what a
	// sidecar replays. Zero for a shard no harm touched.
	WALBytes int64 `json:"wal_bytes"`
}

// measureData records the size of every shard's databases, just after the base backups.
func (r *run) measureData(ctx context.Context) error {
	r.out.Work = nil
	for i, s := range r.c.Shards() {
		var size int64
		err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
			return conn.QueryRow(ctx, "SELECT sum(pg_database_size(oid))::bigint FROM pg_database").Scan(&size)
		})
		if err != nil {
			return fmt.Errorf("measure data of %s: %w", s.Name(), err)
		}
		r.out.Work = append(r.out.Work, ShardWork{Shard: i, DataBytes: size})
	}
	return nil
}

// measureWAL records, for every shard the incident harmed, the WAL between its base backup's
// start and the first harm. A position that does not parse leaves the shard's figure at zero: it
// is a measurement for cost curves, not a check.
func (r *run) measureWAL() {
	if r.out.Incident == nil {
		return
	}
	for i := range r.out.Work {
		w := &r.out.Work[i]
		harms := r.out.Incident.HarmsOn(w.Shard)
		if len(harms) == 0 || w.Shard >= len(r.prot.Backups) {
			continue
		}
		harm, err1 := backup.ParseLSN(harms[0].LSN)
		start, err2 := backup.ParseLSN(r.prot.Backups[w.Shard].StartLSN)
		if err1 == nil && err2 == nil && harm > start {
			w.WALBytes = int64(harm - start)
		}
	}
}
