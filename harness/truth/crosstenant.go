package truth

import (
	"context"
	"fmt"
	"slices"

	"github.com/pgdrill/pgdrill/fixtures"
)

// CrossTenant is a foreign key whose rows, on one shard, point at another tenant's rows.
type CrossTenant struct {
	Shard int `json:"shard"`
	// Table and Key name the child table and its foreign key.
	Table string `json:"table"`
	Key   string `json:"key"`
	// Rows counts the child rows whose parent belongs to another tenant.
	Rows int64 `json:"rows"`
}

// String says it in words, for reports.
func (c CrossTenant) String() string {
	return fmt.Sprintf("%d row(s) of %s on shard %d point through %s at another tenant's rows", c.Rows, c.Table, c.Shard, c.Key)
}

// CheckTenancy returns every foreign key of src's shared tables whose rows point at a row of
// another tenant: the fingerprints group a row by its owner path, so a restore that linked one
// tenant's rows to another's parents through any other key would go unseen. Keys that carry the
// tenant column into the parent's own cannot cross tenants and are not read; under the schema
// and database layouts a tenant's rows can only reach its own tables.
func CheckTenancy(ctx context.Context, src Source) ([]CrossTenant, error) {
	if src.Layout != fixtures.LayoutShared {
		return nil, nil
	}
	var out []CrossTenant
	for shard := range src.Shards {
		found, err := src.crossTenant(ctx, shard)
		if err != nil {
			return nil, fmt.Errorf("check tenancy on shard %d: %w", shard, err)
		}
		out = append(out, found...)
	}
	return out, nil
}

func (s Source) crossTenant(ctx context.Context, shard int) ([]CrossTenant, error) {
	conn, err := s.connect(ctx, shard, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tables, err := s.presentTables(ctx, conn, fixtures.SharedSchema)
	if err != nil {
		return nil, err
	}
	var out []CrossTenant
	for _, t := range tables {
		for _, fk := range t.ForeignKeys {
			parent, ok := s.Model.LookupTable(fk.RefTable)
			if !ok || !parent.Tenant() || !slices.ContainsFunc(tables, func(p fixtures.Table) bool { return p.Name == parent.Name }) ||
				carriesTenant(t, parent, fk) {
				continue
			}
			child, err := s.Model.OwnerSQL(t, fixtures.SharedSchema, "c")
			if err != nil {
				return nil, err
			}
			par, err := s.Model.OwnerSQL(parent, fixtures.SharedSchema, "p")
			if err != nil {
				return nil, err
			}
			var n int64
			if err := conn.QueryRow(ctx, "SELECT pg_catalog.count(*) FROM "+child.From+" WHERE EXISTS (SELECT 1 FROM "+par.From+
				" WHERE ("+fixtures.QualifiedColumns("p", fk.RefColumns)+") = ("+fixtures.QualifiedColumns("c", fk.Columns)+") AND "+
				par.Tenant+" <> "+child.Tenant+")").Scan(&n); err != nil {
				return nil, fmt.Errorf("follow %s of %s: %w", fk.Name, t.Name, err)
			}
			if n > 0 {
				out = append(out, CrossTenant{Shard: shard, Table: t.Name, Key: fk.Name, Rows: n})
			}
		}
	}
	return out, nil
}

// carriesTenant reports whether fk maps the child's tenant column onto the parent's: such a key
// cannot point at another tenant's row.
func carriesTenant(child, parent fixtures.Table, fk fixtures.ForeignKey) bool {
	if child.Owner.Kind != fixtures.OwnedByColumn || parent.Owner.Kind != fixtures.OwnedByColumn {
		return false
	}
	i := slices.Index(fk.Columns, child.Owner.Column)
	return i >= 0 && fk.RefColumns[i] == parent.Owner.Column
}
