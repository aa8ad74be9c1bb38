package restore

import (
	"fmt"
	"strings"
)

// strategies is every built-in strategy, in the order help texts list them: one explicit list,
// so that what pgdrill can do is written down in one place. Each is listed as its zero value,
// which takes the default conflict policy; not all of them can restore as they are: LogicalExport
// needs its Dir and DelayedStandby needs Env.Standbys, both made by the protection phase, and a
// drill fills them in (the exports' directory into the strategy, the standbys into Env) before
// it restores. The runbook strategy is not here: it needs a command.
var strategies = []Strategy{
	PITRSidecar{},
	DelayedStandby{},
	LogicalExport{},
	FullShardPITR{},
	SoftDeleteUndo{},
	PgBackRestSidecar{},
}

// Names lists the built-in strategies.
func Names() []string {
	out := make([]string, len(strategies))
	for i, s := range strategies {
		out[i] = s.Name()
	}
	return out
}

// Lookup returns the built-in strategy with that name.
func Lookup(name string) (Strategy, error) {
	for _, s := range strategies {
		if s.Name() == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("look up restore strategy %q: want one of %s", name, strings.Join(Names(), ", "))
}
