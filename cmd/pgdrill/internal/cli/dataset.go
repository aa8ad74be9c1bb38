package cli

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/spf13/pflag"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/exitcode"
)

// datasetFlags are the flags that shape the synthetic tenants a cluster is filled with.
type datasetFlags struct {
	tenants int
	rows    int64
	layout  string
	seed    uint64
}

func (d *datasetFlags) register(f *pflag.FlagSet) {
	f.IntVar(&d.tenants, "tenants", 200, "synthetic tenants to fill the cluster with (0: leave it empty)")
	f.Int64Var(&d.rows, "rows", 1_000_000, "total rows over all tenants' tables")
	f.StringVar(&d.layout, "layout", string(fixtures.DefaultLayout), "tenancy layout: shared, schema or database")
	f.Uint64Var(&d.seed, "seed", 0, "seed of every random choice (0: pick one, printed so the run can be repeated)")
}

// plan validates the flags into a plan for the given shard count; nil when no tenants are asked
// for. A seed of 0 is replaced by a random one, which the output shows.
func (d *datasetFlags) plan(shards int) (*fixtures.Plan, error) {
	if d.tenants == 0 {
		return nil, nil
	}
	layout, err := fixtures.ParseLayout(d.layout)
	if err != nil {
		return nil, exitcode.With(err, exitcode.InvalidInput)
	}
	seed := d.seed
	for seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:]) >> 1 // positive as an int64 too, for SQL and JSON readers
	}
	plan, err := fixtures.NewPlan(fixtures.PlanSpec{Seed: seed, Tenants: d.tenants, Rows: d.rows, Shards: shards, Layout: layout})
	if err != nil {
		return nil, exitcode.With(err, exitcode.InvalidInput)
	}
	return plan, nil
}
