package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
)

// app is one invocation of the CLI: the process state plus the global flags.
type app struct {
	st        State
	output    string
	logLevel  string
	logFormat string
	pgBin     string
	workRoot  string
	stateDir  string
	runUser   string
	provider  string
	image     string
	// catalogURL and shardURLs name the servers of provider existing.
	catalogURL string
	shardURLs  []string
	log        *slog.Logger
	// host is where everything runs: every command goes through it.
	host *drill.Host
}

// Main runs the CLI and returns the process exit code.
func Main(st State) exitcode.Code {
	ctx, stop := st.Context()
	defer stop()
	a := &app{st: st}
	root := a.rootCommand()
	root.SetArgs(st.Args)
	root.SetOut(st.Stdout)
	root.SetErr(st.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = exitcode.With(fmt.Errorf("interrupted: %w", err), exitcode.Aborted)
	}
	fmt.Fprintf(st.Stderr, "pgdrill: error: %v\n", err)
	return exitcode.Of(err)
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pgdrill",
		Short: "Rehearse restoring a group of tenants out of shared PostgreSQL shards, and score it",
		Long: `pgdrill starts throwaway sharded PostgreSQL clusters filled with synthetic tenants, breaks
them the way real admin scripts do, restores the affected tenants while everyone else keeps
writing, and scores the time and completeness of the restore against recovery objectives.

Clusters are local Postgres processes by default (the host's binaries; see ` + "`pgdrill doctor`" + `).
Data goes to stdout, logs and progress to stderr.

` + exitcode.Help,
		Example: `  # Start a catalog and 4 shards, print their connection strings, stay up until Ctrl-C
  pgdrill up

  # The same, as JSON, left running in the background; tear it down later
  pgdrill up --detach --output json
  pgdrill down --all

  # Check that this machine can run drills
  pgdrill doctor`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setUp()
		},
	}
	f := root.PersistentFlags()
	f.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")
	f.StringVar(&a.pgBin, "pg-bin", "", "directory of the Postgres server binaries (default: $PGDRILL_PG_BIN, pg_config --bindir, PATH, newest /usr/lib/postgresql/*/bin)")
	f.StringVar(&a.workRoot, "work-root", "", "where clusters keep their data (default: $PGDRILL_WORK_ROOT, /dev/shm/pgdrill-UID if it has room, else $TMPDIR/pgdrill-UID)")
	f.StringVar(&a.stateDir, "state-dir", "", "where live clusters are recorded (default: $PGDRILL_STATE_DIR, $XDG_STATE_HOME/pgdrill, ~/.local/state/pgdrill)")
	f.StringVar(&a.runUser, "run-user", drill.DefaultRunUser, "unprivileged account Postgres runs as when pgdrill runs as root (created when missing)")
	f.StringVar(&a.provider, "provider", "", "where clusters run: "+strings.Join(drill.Providers(), " or ")+" (default: the scenario's, else local)")
	f.StringVar(&a.image, "image", "", "Postgres image of the container provider (default: pgdrill's own, made by `pgdrill image build`)")
	f.StringVar(&a.catalogURL, "catalog-url", "", "provider existing: the catalog's server, as postgres://ROLE@HOST:PORT/DB (DB: where pgdrill creates and drops its own databases)")
	f.StringArrayVar(&a.shardURLs, "shard-url", nil, "provider existing: a shard's server, one per shard, in order (repeat)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return exitcode.With(err, exitcode.InvalidInput)
	})
	root.AddCommand(a.runCommand(), a.measureCommand(), a.reportCommand(), a.upCommand(), a.incidentCommand(), a.restoreCommand(), a.locateCommand(), a.faultCommand(), a.scoreCommand(), a.downCommand(), a.lsCommand(), a.scenariosCommand(), a.schemaCommand(), a.doctorCommand(), a.imageCommand(), a.versionCommand())
	return root
}

// setUp validates the global flags and builds the logger.
func (a *app) setUp() error {
	if a.output != "text" && a.output != "json" {
		return invalid("--output must be text or json, got %q", a.output)
	}
	if a.provider != "" && !slices.Contains(drill.Providers(), a.provider) {
		return invalid("--provider must be %s, got %q", strings.Join(drill.Providers(), " or "), a.provider)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return invalid("--log-level must be debug, info, warn or error, got %q", a.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch a.logFormat {
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.st.Stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.st.Stderr, opts))
	default:
		return invalid("--log-format must be text or json, got %q", a.logFormat)
	}
	a.host = drill.NewHost(drill.HostOptions{BinDir: a.pgBin, WorkRoot: a.workRoot, StateDir: a.stateDir, RunUser: a.runUser,
		Provider: a.provider, Image: a.image, Servers: drill.ExistingServers{Catalog: a.catalogURL, Shards: a.shardURLs}, Log: a.log})
	return nil
}

// invalid is an input error: exit code 2, nothing changed.
func invalid(format string, args ...any) error {
	return exitcode.With(fmt.Errorf(format, args...), exitcode.InvalidInput)
}

// env reads the environment through State.
func (a *app) env(name string) string {
	if a.st.Getenv == nil {
		return ""
	}
	return a.st.Getenv(name)
}

// print writes v to stdout: as indented JSON with --output json, else through text.
func (a *app) print(v any, text func(w io.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.st.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // objectives like rto<=15m stay readable
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	text(a.st.Stdout)
	return nil
}

// parseSettings turns repeated --set name=value flags into server settings.
func parseSettings(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, invalid("--set wants name=value, got %q", p)
		}
		out[strings.TrimSpace(name)] = value
	}
	return out, nil
}
