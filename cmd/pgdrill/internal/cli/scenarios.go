package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/scenarios"
)

// scenarioListing is one line of `pgdrill scenarios list`.
type scenarioListing struct {
	ID       string   `json:"id"`
	Incident string   `json:"incident"`
	Strategy string   `json:"strategy"`
	Tier     string   `json:"tier"`
	Title    string   `json:"title"`
	Tags     []string `json:"tags,omitempty"`
}

// validation is what `pgdrill scenarios validate` found in one file.
type validation struct {
	File string `json:"file"`
	// ID is the scenario's id when the file is valid.
	ID       string              `json:"id,omitempty"`
	Valid    bool                `json:"valid"`
	Problems []scenarios.Problem `json:"problems,omitempty"`
}

func (a *app) scenariosCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scenarios",
		Short: "List, show and validate drill scenarios",
		Long: `A scenario is a drill written down as YAML (apiVersion ` + scenarios.APIVersion + `, kind Scenario):
the cluster, the tenants, the workload, the protection in place, the incident, how it is
detected, how it is restored, chaos faults, and the objectives it is scored against. Built-in
scenarios are named after the incident they reproduce; any command that takes a scenario also
takes a file.

Files are decoded strictly (unknown fields are errors) and every problem is reported at once,
one per line on stderr, as FILE:LINE:COLUMN: FIELD: MESSAGE, with exit code 2.`,
		Example: `  pgdrill scenarios list
  pgdrill scenarios show wrong-id-deletion > ours.yaml   # a starting point, defaults written out
  pgdrill scenarios validate ours.yaml drills/*.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return invalid("unknown command %q for %s: use list, show or validate", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(a.scenariosListCommand(), a.scenariosShowCommand(), a.scenariosValidateCommand(), a.scenariosStrategiesCommand())
	return cmd
}

func (a *app) scenariosStrategiesCommand() *cobra.Command {
	var markdown bool
	cmd := &cobra.Command{
		Use:   "strategies",
		Short: "List the restore strategies: what each restores from, what it can restore, and when to choose it",
		Example: `  pgdrill scenarios strategies
  pgdrill scenarios strategies --markdown   # the README's table
  pgdrill scenarios strategies -o json`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			infos := scenarios.StrategyInfos()
			return a.print(infos, func(w io.Writer) {
				if markdown {
					fmt.Fprint(w, scenarios.StrategyTable())
					return
				}
				for _, s := range infos {
					fmt.Fprintf(w, "%-19s %s\n%-19s needs: %s; restores: %s\n%-19s choose it when: %s\n\n", s.Name, s.Source,
						"", cmp.Or(s.Needs, "nothing"), strings.Join(s.IncidentNames(), ", "), "", s.ChooseWhen)
				}
			})
		},
	}
	cmd.Flags().BoolVar(&markdown, "markdown", false, "print the table as Markdown")
	return cmd
}

func (a *app) scenariosListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the built-in scenarios",
		Example: "  pgdrill scenarios list\n  pgdrill scenarios list -o json",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			var out []scenarioListing
			for _, s := range scenarios.Builtin() {
				out = append(out, scenarioListing{ID: s.Metadata.ID, Incident: string(s.Spec.Incident.Kind),
					Strategy: string(s.Spec.Restore.Strategy), Tier: string(s.Metadata.Tier),
					Title: s.Metadata.Title, Tags: s.Metadata.Tags})
			}
			return a.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "%-22s %-19s %-11s %s\n", "ID", "STRATEGY", "TIER", "TITLE")
				for _, s := range out {
					fmt.Fprintf(w, "%-22s %-19s %-11s %s\n", s.ID, s.Strategy, s.Tier, s.Title)
				}
			})
		},
	}
}

func (a *app) scenariosShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID|FILE",
		Short: "Print a scenario with every default written out",
		Long: `Print a built-in scenario (by id) or a scenario file, validated, with every default written
out: what the drill will actually do. The YAML output is itself a valid scenario file.`,
		Example: `  pgdrill scenarios show wrong-id-deletion
  pgdrill scenarios show ./ours.yaml -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return invalid("%s takes one scenario id or file, got %d arguments", cmd.CommandPath(), len(args))
			}
			s, err := scenarios.Lookup(args[0])
			if err != nil {
				return a.invalidScenario(args[0], err)
			}
			text, err := yaml.Marshal(s)
			if err != nil {
				return fmt.Errorf("marshal scenario %s: %w", s.Metadata.ID, err)
			}
			return a.print(s, func(w io.Writer) {
				fmt.Fprintf(w, "# %s, with defaults applied\n%s", s.File, text)
			})
		},
	}
}

func (a *app) scenariosValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files, reporting every problem at once",
		Long: `Decode and validate scenario files without running anything. Valid files are listed on
stdout; every problem of every invalid file goes to stderr, one per line, as
FILE:LINE:COLUMN: FIELD: MESSAGE. Exit code 2 when any file is invalid.`,
		Example: `  pgdrill scenarios validate ours.yaml
  pgdrill scenarios validate drills/*.yaml -o json   # results as JSON on stdout, problems on stderr`,
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) == 0 {
				return invalid("%s needs at least one file", cmd.CommandPath())
			}
			out := make([]validation, 0, len(files))
			bad := 0
			for _, f := range files {
				v := validation{File: f}
				s, err := scenarios.Load(f)
				var ve *scenarios.ValidationError
				switch {
				case errors.As(err, &ve):
					v.Problems = ve.Problems
				case err != nil:
					v.Problems = []scenarios.Problem{{File: f, Message: err.Error()}}
				default:
					v.Valid, v.ID = true, s.Metadata.ID
				}
				if !v.Valid {
					bad++
					a.printProblems(v.Problems)
				}
				out = append(out, v)
			}
			err := a.print(out, func(w io.Writer) {
				for _, v := range out {
					if v.Valid {
						fmt.Fprintf(w, "ok %s (%s)\n", v.File, v.ID)
					}
				}
			})
			if err != nil || bad == 0 {
				return err
			}
			return invalid("%d of %d scenario files are invalid", bad, len(files))
		},
	}
}

// invalidScenario turns a failure to find or read a scenario into an input error, its problems
// (if it has any) on stderr one per line.
func (a *app) invalidScenario(name string, err error) error {
	var ve *scenarios.ValidationError
	if !errors.As(err, &ve) {
		return invalid("%v", err)
	}
	a.printProblems(ve.Problems)
	return invalid("scenario %s is invalid: %d %s", name, len(ve.Problems),
		map[bool]string{true: "problem", false: "problems"}[len(ve.Problems) == 1])
}

// printProblems writes problems to stderr, one per line, for editors and CI logs to pick up.
func (a *app) printProblems(ps []scenarios.Problem) {
	var b strings.Builder
	for _, p := range ps {
		if p.Line == 0 { // the file could not be read: no position to give
			fmt.Fprintf(&b, "%s\n", p.Message)
			continue
		}
		fmt.Fprintf(&b, "%s\n", p)
	}
	fmt.Fprint(a.st.Stderr, b.String())
}
