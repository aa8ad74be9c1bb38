package backup

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/atomicfile"
	"github.com/pgdrill/pgdrill/harness/cluster"
)

// ExportManifest is the file that describes an export, written last: a directory without it
// holds an interrupted export, which nothing restores from.
const ExportManifest = "export.json"

// Export is a logical, per-tenant copy of some tenants' rows: for each tenant, one binary COPY
// file per table, all read from one snapshot of the tenant's database. It is what teams without
// a WAL archive have — periodic exports — and what the logical-export strategy restores from;
// anything a tenant wrote after its snapshot is not in it.
type Export struct {
	// Dir is the export's directory. It is not kept in the manifest, so an export can be moved.
	Dir    string          `json:"-"`
	RunID  string          `json:"run_id"`
	Layout fixtures.Layout `json:"layout"`
	// Model is the tenancy model of the exported tables.
	Model *fixtures.Model `json:"model"`
	// Time is when the export's oldest snapshot was taken: the export holds nothing newer.
	Time time.Time `json:"time"`
	// Tenants are ordered by id.
	Tenants []ExportedTenant `json:"tenants"`
}

// ExportedTenant is one tenant of an export.
type ExportedTenant struct {
	ID    int64 `json:"id"`
	Shard int   `json:"shard"`
	// LSN is the shard's WAL insert position as the tenant's snapshot was taken: a harm whose
	// transaction began at or after it is not in the export. Tenants exported in one snapshot
	// (shared and schema layouts: one per shard) share it; the database layout takes one
	// snapshot per tenant database.
	LSN string `json:"lsn"`
	// Time is when the tenant's snapshot was taken.
	Time time.Time `json:"time"`
	// Tables are the tenant's tables in foreign-key order.
	Tables []ExportedTable `json:"tables"`
}

// ExportedTable is one table of an exported tenant.
type ExportedTable struct {
	Name string `json:"name"`
	// File is the binary COPY file, relative to the export's directory.
	File string `json:"file"`
	Rows int64  `json:"rows"`
}

// Tenant returns the exported tenant with that id.
func (e Export) Tenant(id int64) (ExportedTenant, bool) {
	i, ok := slices.BinarySearchFunc(e.Tenants, id, func(t ExportedTenant, id int64) int { return cmp.Compare(t.ID, id) })
	if !ok {
		return ExportedTenant{}, false
	}
	return e.Tenants[i], true
}

// Path returns where a table's file is.
func (e Export) Path(t ExportedTable) string { return filepath.Join(e.Dir, t.File) }

// ExportTenants exports tenants of c into dir (created if missing; it must not hold an export
// already): the catalog says how they are stored and on which shard; nil exports every tenant.
// Shards are exported in parallel, each in one read-only repeatable-read snapshot (the database
// layout: one per tenant database), so a tenant's foreign-key closure is consistent.
func ExportTenants(ctx context.Context, c cluster.Cluster, tenants []int64, dir string) (Export, error) {
	exp := Export{Dir: dir, RunID: c.RunID()}
	var directory []fixtures.CatalogTenant
	err := cluster.WithConn(ctx, c.Catalog().DSN(), func(conn *pgx.Conn) error {
		d, err := fixtures.ReadDataset(ctx, conn)
		if err != nil {
			return err
		}
		exp.Layout, exp.Model = d.Layout, d.Model
		directory, err = fixtures.ReadTenants(ctx, conn)
		return err
	})
	if err != nil {
		return exp, fmt.Errorf("export tenants: read catalog: %w", err)
	}
	shards := c.Shards()
	byShard := make([][]int64, len(shards))
	for _, t := range directory {
		if tenants != nil && !slices.Contains(tenants, t.ID) {
			continue
		}
		if t.Shard < 0 || t.Shard >= len(shards) {
			return exp, fmt.Errorf("export tenant %d: shard %d does not exist", t.ID, t.Shard)
		}
		byShard[t.Shard] = append(byShard[t.Shard], t.ID)
	}
	for _, id := range tenants {
		if !slices.ContainsFunc(directory, func(t fixtures.CatalogTenant) bool { return t.ID == id }) {
			return exp, fmt.Errorf("export tenant %d: not in the catalog", id)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ExportManifest)); err == nil {
		return exp, fmt.Errorf("export tenants into %s: it already holds an export", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return exp, fmt.Errorf("create export directory: %w", err)
	}

	results := make([][]ExportedTenant, len(shards))
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, s := range shards {
		if len(byShard[i]) == 0 {
			continue
		}
		wg.Go(func() { results[i], errs[i] = exportShard(ctx, s, exp, i, byShard[i], dir) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return exp, err
	}
	for _, r := range results {
		exp.Tenants = append(exp.Tenants, r...)
	}
	slices.SortFunc(exp.Tenants, func(a, b ExportedTenant) int { return cmp.Compare(a.ID, b.ID) })
	for _, t := range exp.Tenants {
		if exp.Time.IsZero() || t.Time.Before(exp.Time) {
			exp.Time = t.Time
		}
	}
	return exp, writeManifest(exp)
}

// exportShard exports one shard's tenants: in one snapshot, or one per tenant database.
func exportShard(ctx context.Context, s cluster.Server, exp Export, shard int, ids []int64, dir string) ([]ExportedTenant, error) {
	if exp.Layout != fixtures.LayoutDatabase {
		out, err := exportSnapshot(ctx, s.DSN(), exp, shard, ids, dir)
		if err != nil {
			return nil, fmt.Errorf("export tenants of %s: %w", s.Name(), err)
		}
		return out, nil
	}
	var out []ExportedTenant
	for _, id := range ids {
		r, err := exportSnapshot(ctx, s.DSNFor(fixtures.TenantContainer(id)), exp, shard, []int64{id}, dir)
		if err != nil {
			return nil, fmt.Errorf("export tenant %d of %s: %w", id, s.Name(), err)
		}
		out = append(out, r...)
	}
	return out, nil
}

// exportSnapshot writes the tenants' tables out of one database, in one read-only
// repeatable-read transaction, one file per tenant and table.
func exportSnapshot(ctx context.Context, dsn string, exp Export, shard int, ids []int64, dir string) ([]ExportedTenant, error) {
	var out []ExportedTenant
	err := cluster.WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			var lsn string
			var at time.Time
			// The snapshot is taken by this, the transaction's first statement.
			if err := tx.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text, clock_timestamp()").Scan(&lsn, &at); err != nil {
				return fmt.Errorf("take snapshot: %w", err)
			}
			for _, id := range ids {
				t := ExportedTenant{ID: id, Shard: shard, LSN: lsn, Time: at.UTC()}
				tenantDir := fixtures.TenantContainer(id)
				if err := os.MkdirAll(filepath.Join(dir, tenantDir), 0o755); err != nil {
					return fmt.Errorf("create export directory: %w", err)
				}
				for _, table := range exp.Model.TenantTables() {
					et := ExportedTable{Name: table.Name, File: filepath.Join(tenantDir, table.Name+".copy")}
					rows, err := exp.Model.TenantRowsSQL(table, exp.Layout.Locate(id).Schema, id)
					if err != nil {
						return err
					}
					if et.Rows, err = copyToFile(ctx, tx.Conn(), "COPY ("+rows+") TO STDOUT (FORMAT binary)", filepath.Join(dir, et.File)); err != nil {
						return fmt.Errorf("export %s of tenant %d: %w", table.Name, id, err)
					}
					t.Tables = append(t.Tables, et)
				}
				out = append(out, t)
			}
			return nil
		})
	})
	return out, err
}

// copyToFile runs a COPY TO STDOUT into a new file and returns the number of rows.
func copyToFile(ctx context.Context, conn *pgx.Conn, sql, path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("create file: %w", err)
	}
	tag, err := conn.PgConn().CopyTo(ctx, f, sql)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", path, cerr)
	}
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// writeManifest writes the export's manifest, through a rename so it appears complete or not at
// all.
func writeManifest(e Export) error {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encode export manifest: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(e.Dir, ExportManifest), data, 0o644); err != nil {
		return fmt.Errorf("write export manifest: %w", err)
	}
	return nil
}

// ReadExport reads the export in dir.
func ReadExport(dir string) (Export, error) {
	data, err := os.ReadFile(filepath.Join(dir, ExportManifest))
	if err != nil {
		return Export{}, fmt.Errorf("read export manifest: %w", err)
	}
	var e Export
	if err := json.Unmarshal(data, &e); err != nil {
		return Export{}, fmt.Errorf("read export manifest %s: %w", dir, err)
	}
	e.Dir = dir
	return e, nil
}

// ReadExports reads every complete export in the subdirectories of root (one level deep, as a
// periodic exporter writes them), oldest first. Directories without a manifest are skipped: they
// hold exports that were interrupted.
func ReadExports(root string) ([]Export, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read exports: %w", err)
	}
	var out []Export
	for _, d := range entries {
		if !d.IsDir() {
			continue
		}
		e, err := ReadExport(filepath.Join(root, d.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b Export) int { return a.Time.Compare(b.Time) })
	return out, nil
}
