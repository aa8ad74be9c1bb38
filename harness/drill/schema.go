package drill

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/exitcode"
)

// SchemaModel is what pgdrill understood of a schema: its tenant and reference tables, its
// foreign-key graph, its fill order and what it does not handle (see fixtures.Model).
type SchemaModel = fixtures.Model

// SchemaSource says where InspectSchema reads a schema from: a DDL file, a live database's
// catalog, or, with neither, the built-in world's schema file.
type SchemaSource struct {
	// File is a DDL file (what pg_dump --schema-only prints loads).
	File string
	// DSN connects to a database whose schema, never its data, is read.
	DSN string
	// TenantKey and TenantKeys say which columns hold the tenant, as in a scenario's
	// spec.dataset.
	TenantKey  string
	TenantKeys map[string]string
}

// InspectSchema reads the tenancy model of a schema. A file is loaded into a throwaway Postgres
// server started for the purpose and removed after; a database is only read, in a read-only
// transaction of catalog queries.
func (h *Host) InspectSchema(ctx context.Context, src SchemaSource) (*SchemaModel, error) {
	opts := fixtures.ReadOptions{TenantKey: src.TenantKey, TenantKeys: src.TenantKeys}
	if src.DSN != "" {
		if src.File != "" {
			return nil, exitcode.With(errors.New("inspect schema: give a file or --from, not both"), exitcode.InvalidInput)
		}
		return inspectDatabase(ctx, src.DSN, opts)
	}
	s := dataset.Schema{DDL: fixtures.BuiltinSQL(), Options: opts}
	s.Options.Name = fixtures.BuiltinName
	if src.File != "" {
		ddl, err := os.ReadFile(src.File)
		if err != nil {
			return nil, exitcode.With(fmt.Errorf("inspect schema: %w", err), exitcode.InvalidInput)
		}
		s.DDL, s.Options.Name = string(ddl), fixtures.ModelName(src.File)
	}
	p, err := h.Provider(ctx)
	if err != nil {
		return nil, err
	}
	c, err := p.Create(ctx, cluster.Spec{Shards: 1})
	if c != nil {
		defer func() {
			if derr := c.Destroy(context.WithoutCancel(ctx)); derr != nil {
				h.log.Error("teardown failed", "run_id", c.RunID(), "err", derr)
			}
		}()
	}
	if err != nil {
		return nil, exitcode.With(fmt.Errorf("start a server to read the schema in: %w", err), exitcode.HarnessError)
	}
	m, err := dataset.ReadModel(ctx, c, s)
	if errors.Is(err, dataset.ErrUnusableSchema) {
		return nil, exitcode.With(err, exitcode.InvalidInput)
	}
	return m, exitcode.With(err, exitcode.HarnessError)
}

// inspectDatabase reads the model of a live database's schema.
func inspectDatabase(ctx context.Context, dsn string, opts fixtures.ReadOptions) (*SchemaModel, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, exitcode.With(fmt.Errorf("inspect schema: parse DSN: %w", err), exitcode.InvalidInput)
	}
	opts.Name = cfg.Database
	opts.Skip = append(opts.Skip, cluster.MarkerTable) // a database pgdrill made carries its marker
	// Nothing may write, whatever the role could: every statement runs read-only.
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, exitcode.With(fmt.Errorf("inspect schema: connect to database %s: %w", cfg.Database, err), exitcode.InvalidInput)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	m, err := fixtures.ReadModel(ctx, conn, opts)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return nil, exitcode.With(err, exitcode.InvalidInput) // the database refused: a privilege the role lacks
	}
	return m, exitcode.With(err, exitcode.HarnessError)
}
