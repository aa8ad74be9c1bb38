package restore

import (
	"context"
	"fmt"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
)

// PgBackRestSidecar is PITRSidecar with pgBackRest as the engine: each affected shard's sidecar
// is restored by `pgbackrest restore --set ... --type=xid|lsn --target ... --target-exclusive
// --target-action=promote` from the shard's stanza (WAL fetched with archive-get), and the
// affected tenants are merged back from it. It needs a cluster created with
// cluster.EnginePgBackRest, whose protection phase took pgBackRest backups.
//
// Choose it when pgBackRest is what protects production: the drill then proves the backups and
// the archive the team really has, with pgBackRest's own restore, rather than a copy of them.
type PgBackRestSidecar struct {
	// Policy decides conflicts between backup and live rows. Default: KeepLive.
	Policy ConflictPolicy
}

// Name implements Strategy.
func (PgBackRestSidecar) Name() string { return "pgbackrest-sidecar" }

// Restore implements Strategy.
func (s PgBackRestSidecar) Restore(ctx context.Context, env Env, rec incident.Record) (Result, error) {
	for _, shard := range affectedShards(rec) {
		b, err := shardBackup(env, shard)
		if err != nil {
			return Result{Strategy: s.Name()}, err
		}
		if b.Engine != cluster.EnginePgBackRest {
			return Result{Strategy: s.Name()}, fmt.Errorf("restore shard %d with pgbackrest: its backup %s was taken with %q; protect the cluster with the %s engine",
				shard, b.ID, b.Engine, cluster.EnginePgBackRest)
		}
	}
	res, err := PITRSidecar(s).Restore(ctx, env, rec)
	res.Strategy = s.Name()
	return res, err
}
