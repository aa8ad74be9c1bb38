package truth

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
)

// Misplacement is a tenant's rows found where the catalog does not put them.
type Misplacement struct {
	Tenant int64 `json:"tenant"`
	// Shard is where the rows were found.
	Shard int `json:"shard"`
	// CatalogShard is where the catalog says the tenant lives; -1 when the catalog does not
	// know the tenant at all.
	CatalogShard int `json:"catalog_shard"`
	// Rows is how many of the tenant's rows are on Shard.
	Rows int64 `json:"rows"`
}

// CheckPlacement returns every tenant whose rows live on a shard other than the one the catalog
// names (or who is not in the catalog), from snap, or from a new snapshot of src when snap is
// nil. Where the catalog's shard lacks rows is the diff's business, not placement's.
func CheckPlacement(ctx context.Context, src Source, snap *Snapshot) ([]Misplacement, error) {
	if src.Catalog == "" {
		return nil, errors.New("check placement: source has no catalog DSN")
	}
	if snap == nil {
		var err error
		if snap, err = Take(ctx, src); err != nil {
			return nil, err
		}
	}
	conn, err := pgx.Connect(ctx, src.Catalog)
	if err != nil {
		return nil, fmt.Errorf("connect to catalog: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tenants, err := fixtures.ReadTenants(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("check placement: %w", err)
	}
	home := make(map[int64]int, len(tenants))
	for _, t := range tenants {
		home[t.ID] = t.Shard
	}
	type at struct {
		tenant int64
		shard  int
	}
	rows := map[at]int64{}
	var order []at
	for _, e := range snap.Entries {
		k := at{e.Tenant, e.Shard}
		if _, ok := rows[k]; !ok {
			order = append(order, k)
		}
		rows[k] += e.Rows
	}
	var out []Misplacement
	for _, k := range order {
		shard, known := home[k.tenant]
		if rows[k] == 0 || (known && shard == k.shard) {
			continue
		}
		if !known {
			shard = -1
		}
		out = append(out, Misplacement{Tenant: k.tenant, Shard: k.shard, CatalogShard: shard, Rows: rows[k]})
	}
	return out, nil
}
