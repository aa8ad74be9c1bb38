package score

import (
	"context"
	"fmt"
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
	// Rows are the victims' rows by table, compared row by row after the restore.
	Rows map[truth.TenantTable][]truth.RowHash
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
	b := Baseline{Rows: map[truth.TenantTable][]truth.RowHash{}, Taken: time.Now()}
	var err error
	if b.Snapshot, err = truth.Take(ctx, src); err != nil {
		return b, err
	}
	for _, v := range victims {
		for _, t := range fixtures.TableNames(src.Model.TenantTables()) {
			rows, err := src.RowHashes(ctx, v.ID, t)
			if err != nil {
				return b, fmt.Errorf("read baseline of tenant %d: %w", v.ID, err)
			}
			b.Rows[truth.TenantTable{Tenant: v.ID, Table: t}] = rows
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

// has reports whether the baseline holds a row of tt with that key.
func (b Baseline) has(tt truth.TenantTable, key []string) bool {
	k := truth.KeyString(key)
	for _, r := range b.Rows[tt] {
		if truth.KeyString(r.Key) == k {
			return true
		}
	}
	return false
}
