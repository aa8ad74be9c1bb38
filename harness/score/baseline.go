package score

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// Baseline is the truth the harness takes before the incident, while nothing writes: what every
// tenant table, the victims' rows, the tenant directory and the schema of every database were.
// With the ledger of the writes made since, it says what everything must hold after a restore.
// It never leaves the process that took it: a game day's judge keeps it in memory, so the team
// being scored cannot edit it.
type Baseline struct {
	// Snapshot fingerprints every tenant table on every shard.
	Snapshot *truth.Snapshot
	// Rows are the victims' rows by table, compared row by row after the restore: kept on disk,
	// so that memory does not grow with the harm (Close releases them).
	Rows *truth.RowFile
	// Directory is the catalog's tenant directory.
	Directory *truth.Directory
	// Schema is the schema of every database the truth covers.
	Schema *truth.Schema
	// Reference fingerprints the model's reference tables, by "place: table".
	Reference map[string]truth.Fingerprint
	// Taken is when the baseline was taken: the workload starts right after it, so a row lost
	// with its contents from here lost data older than every write.
	Taken time.Time
}

// TakeBaseline reads the baseline of src, the victims' rows row by row. It must run while no
// write is in flight.
func TakeBaseline(ctx context.Context, src truth.Source, victims []fixtures.Tenant) (Baseline, error) {
	b := Baseline{Taken: time.Now()}
	var err error
	if b.Snapshot, err = truth.Take(ctx, src); err != nil {
		return b, err
	}
	if b.Rows, err = truth.NewRowFile(); err != nil {
		return b, err
	}
	for chunk := range slices.Chunk(victims, baselineChunk) {
		err := src.EachRowHash(ctx, tenantTables(src.Model, chunk), b.Rows.Put)
		if err == nil {
			err = b.Rows.Flush()
		}
		if err != nil {
			b.Close()
			return Baseline{}, fmt.Errorf("read baseline of the victims' rows: %w", err)
		}
	}
	if b.Directory, err = truth.TakeDirectory(ctx, src.Catalog); err != nil {
		return b, err
	}
	places, err := truth.SchemaPlaces(ctx, src)
	if err != nil {
		return b, err
	}
	if b.Schema, err = truth.TakeSchema(ctx, places); err != nil {
		return b, err
	}
	b.Reference, err = truth.TakeReference(ctx, src, places)
	return b, err
}

// tenantTables lists every tenant table of the tenants.
func tenantTables(m *fixtures.Model, tenants []fixtures.Tenant) []truth.TenantTable {
	names := fixtures.TableNames(m.TenantTables())
	out := make([]truth.TenantTable, 0, len(tenants)*len(names))
	for _, v := range tenants {
		for _, t := range names {
			out = append(out, truth.TenantTable{Tenant: v.ID, Table: t})
		}
	}
	return out
}

// Close releases the victims' rows. A baseline not taken closes as nothing.
func (b Baseline) Close() error { return b.Rows.Close() }

// baselineChunk is how many victims' rows are read from the servers at once: a few queries per
// table and shard for each chunk, and the row file's write buffers bounded by the chunk's
// tables, whatever the harm.
const baselineChunk = 64
