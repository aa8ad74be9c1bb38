package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
)

func (a *app) schemaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Explain what pgdrill understands of a multi-tenant schema",
		Long: `A drill runs on a schema: pgdrill's built-in Jira-like world, or yours, named by a scenario's
spec.dataset.schema (a DDL file; what pg_dump --schema-only --no-owner --no-privileges prints
loads). pgdrill reads it through Postgres itself and builds a tenancy model: which tables belong
to a tenant (by a tenant column, or through foreign keys to a table with one), which are global
reference data, the foreign-key graph and the order to fill, copy and delete them in, and
everything it cannot handle, with why.`,
		Example: `  pgdrill schema inspect ours.sql --tenant-key account_id --tenant-keys accounts=id
  pgdrill schema inspect --from 'postgres://app@staging/app'   # reads the catalog, never the data
  pgdrill schema inspect -o json > model.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return invalid("unknown command %q for %s: use inspect", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(a.schemaInspectCommand())
	return cmd
}

func (a *app) schemaInspectCommand() *cobra.Command {
	var src drill.SchemaSource
	cmd := &cobra.Command{
		Use:   "inspect [FILE]",
		Short: "Print the tenancy model of a schema file, a live database, or (with neither) the built-in world",
		Long: `Reads a DDL file into a throwaway Postgres server (started and removed again; it needs the
same Postgres binaries as a drill) or, with --from, the catalog of an existing database in a
read-only session, and prints what pgdrill understood: tenant tables and how each row finds its
tenant, reference tables, foreign keys, fill order, and findings. A finding marked "refused"
must be fixed before the schema can be drilled; "ignored" objects are left out of a drill's
cluster. Exit code 2 when the file does not load, a flag is wrong, or the schema has a refusal.`,
		Example: `  pgdrill schema inspect
  pgdrill schema inspect ours.sql --tenant-key account_id --tenant-keys accounts=id
  pgdrill schema inspect --from 'postgres://app@staging/app' -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				src.File = args[0]
			}
			m, err := a.host.InspectSchema(cmd.Context(), src)
			if err != nil {
				return err
			}
			if err := a.print(m, func(w io.Writer) { m.WriteText(w) }); err != nil {
				return err
			}
			if err := m.Err(); err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&src.DSN, "from", "", "read the schema of this database (a connection string) instead of a file; only its catalog is read")
	f.StringVar(&src.TenantKey, "tenant-key", "", fmt.Sprintf("the column that holds the tenant in most tables (default %q)", "tenant_id"))
	f.StringToStringVar(&src.TenantKeys, "tenant-keys", nil, "tables whose tenant column differs, as TABLE=COLUMN,...")
	return cmd
}
