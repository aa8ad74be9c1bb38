package truth

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
)

// DirectoryTable names the catalog's tenant directory wherever truth reports it beside tenant
// tables (diffs, ledgers): qualified with "catalog." so that it cannot be taken for a shard table
// of the same name.
const DirectoryTable = "catalog." + fixtures.CatalogTenants

// Directory is the catalog's tenant directory at one moment: every entry a tenant has there
// (its shard, status, name, tier and timestamps), which a restore must leave as it must be as
// surely as the tenant's rows. The catalog's dataset record is not part of it: it describes the
// fill, not a tenant.
type Directory struct {
	// Rows are every entry's key (the tenant id, as text) and row hash.
	Rows []RowHash `json:"rows"`
	// Homes is the shard each entry names, by tenant id.
	Homes map[int64]int `json:"homes"`
	// Copy is the directory as binary COPY data of fixtures.DirectoryTable's columns: what
	// Replay rebuilds the directory from, with the writes made to it since.
	Copy []byte `json:"copy"`
}

// TakeDirectory reads the tenant directory of the catalog at catalogDSN, in one snapshot. A
// directory table that is gone reads as an empty directory: every entry is missing, which is
// for the comparison to report, not an error.
func TakeDirectory(ctx context.Context, catalogDSN string) (*Directory, error) {
	conn, err := Connect(ctx, catalogDSN, "")
	if err != nil {
		return nil, fmt.Errorf("take directory of the catalog: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	name := pgx.Identifier{fixtures.SharedSchema, fixtures.CatalogTenants}.Sanitize()
	d := &Directory{Homes: map[int64]int{}}
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil || !exists {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT t.tenant_id, t.shard, "+RowHashSQL("t", name)+" FROM "+name+" t")
		if err != nil {
			return err
		}
		var id int64
		var shard int32
		var hash int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &shard, &hash}, func() error {
			d.Rows = append(d.Rows, RowHash{Key: []string{strconv.FormatInt(id, 10)}, Hash: hash})
			d.Homes[id] = int(shard)
			return nil
		}); err != nil {
			return err
		}
		var buf bytes.Buffer
		_, err = tx.Conn().PgConn().CopyTo(ctx, &buf, "COPY (SELECT "+fixtures.ColumnList(fixtures.DirectoryTable().ColumnNames())+
			" FROM "+name+") TO STDOUT (FORMAT binary)")
		d.Copy = buf.Bytes()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("take directory: %w", err)
	}
	return d, nil
}
