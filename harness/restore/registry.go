package restore

import (
	"fmt"
	"strings"
)

// strategies is every built-in strategy, in the order help texts list them: one explicit list,
// so that what pgdrill can do is written down in one place. Each works from its zero value; what
// one needs beyond Env (LogicalExport's Dir, the standbys in Env.Standbys) a drill fills in from
// its protection phase. The runbook strategy is not here: it needs a command.
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
