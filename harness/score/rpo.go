package score

import (
	"time"

	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// RPO is the data loss in time: from the newest point such that every acknowledged write of the
// affected tenants at or before it is present after the restore, to the incident (incidentAt, on
// the harness's clock, as the writes' acknowledgements are). Each missing or wrong row of diffs
// dates its loss: to the first acknowledged write of its key, or to the baseline (the workload's
// start, taken) for a row that predates the workload, which predates says of a missing row's
// key (Findings.Predates). Rows that should not be there are not a loss of data and do not
// count; uncertain rows were set apart from diffs already.
func RPO(incidentAt, taken time.Time, predates func(truth.TenantTable, []string) bool, diffs []truth.TableDiff, entries []workload.Entry) time.Duration {
	type rowAt struct {
		tt  truth.TenantTable
		key string
	}
	firstWrite := map[rowAt]time.Time{}
	for _, e := range entries {
		k := rowAt{e.TenantTable(), truth.KeyString(e.Key)}
		if _, seen := firstWrite[k]; !seen && !e.Indeterminate {
			firstWrite[k] = e.Acked
		}
	}
	lossAt := incidentAt
	for _, d := range diffs {
		for _, row := range d.Rows {
			if row.Kind != truth.Missing && row.Kind != truth.Changed {
				continue
			}
			at, written := firstWrite[rowAt{d.TenantTable, truth.KeyString(row.Key)}]
			// A row missing with its pre-workload contents, or wrong with no write to explain
			// it, lost data older than the workload; otherwise the loss is no older than the
			// key's first write (the earliest, so the measure errs towards a larger RPO).
			if !written || (row.Kind == truth.Missing && predates(d.TenantTable, row.Key)) {
				at = taken
			}
			if at.Before(lossAt) {
				lossAt = at
			}
		}
	}
	return max(incidentAt.Sub(lossAt), 0)
}
