package drill

import (
	"fmt"

	"github.com/pgdrill/pgdrill/harness/costmodel"
	"github.com/pgdrill/pgdrill/harness/restore"
)

// CostPoints are the outcome's restore phases as cost-curve points (pgdrill measure), one per
// phase and shard: the provision against the shard's data, the replay against the WAL it
// replayed, the merge against the tenants and rows it merged. A shard's phases of several harms
// add up. Phases the strategy did not run give no point.
func (o *Outcome) CostPoints() map[string][]costmodel.Point {
	out := map[string][]costmodel.Point{}
	if o.Restore == nil {
		return out
	}
	seconds := map[string]map[int]float64{}
	for _, p := range o.Restore.Phases {
		if seconds[p.Name] == nil {
			seconds[p.Name] = map[int]float64{}
		}
		seconds[p.Name][p.Shard] += p.Duration().Seconds()
	}
	tenants, rows := map[int]float64{}, map[int]float64{}
	for _, t := range o.Restore.Tenants {
		if !t.Earlier {
			tenants[t.Shard]++
			rows[t.Shard] += float64(t.RowsWritten)
		}
	}
	const gb = 1 << 30
	for _, w := range o.Work {
		label := fmt.Sprintf("run %s shard %d", o.RunID, w.Shard)
		add := func(phase string, work map[costmodel.Feature]float64) {
			if s, ok := seconds[phase][w.Shard]; ok {
				out[phase] = append(out[phase], costmodel.Point{Work: work, Seconds: s, Label: label})
			}
		}
		add(restore.PhaseProvision, map[costmodel.Feature]float64{costmodel.DataGB: float64(w.DataBytes) / gb})
		add(restore.PhaseReplay, map[costmodel.Feature]float64{costmodel.WALGB: float64(w.WALBytes) / gb})
		add(restore.PhaseMerge, map[costmodel.Feature]float64{costmodel.Tenants: tenants[w.Shard], costmodel.Rows: rows[w.Shard] / 1e6})
	}
	return out
}
