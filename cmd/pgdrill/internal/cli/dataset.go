package cli

import (
	"github.com/spf13/pflag"

	"github.com/pgdrill/pgdrill/harness/drill"
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
	f.StringVar(&d.layout, "layout", drill.DefaultLayout, "tenancy layout: shared, schema or database")
	f.Uint64Var(&d.seed, "seed", 0, "seed of every random choice (0: pick one, printed so the run can be repeated)")
}

// spec is the dataset the flags ask for.
func (d *datasetFlags) spec() *drill.DatasetSpec {
	return &drill.DatasetSpec{Tenants: d.tenants, Rows: d.rows, Layout: d.layout, Seed: d.seed}
}
